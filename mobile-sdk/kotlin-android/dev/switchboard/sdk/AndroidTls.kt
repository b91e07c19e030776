package dev.switchboard.sdk

import android.content.Context

/**
 * Hands the SDK's certificate checks (rustls-platform-verifier) the app's [Context], so that
 * HTTPS and WSS trust what Android trusts. Call [init] once, in `Application.onCreate`, before
 * the first `Client` connects; until then every secure connection fails with
 * `SdkException.Network`.
 *
 * Android only (it needs `android.jar`): `package.sh android` compiles it into the AAR. The
 * library exports `Java_dev_switchboard_sdk_AndroidTls_init`, so the name must stay as it is.
 */
object AndroidTls {
    init {
        // JNA loads the library for the bindings without making its JNI symbols visible.
        System.loadLibrary("switchboard_sdk")
    }

    @JvmStatic
    external fun init(context: Context)
}
