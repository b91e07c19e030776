// Must NOT compile: the SDK's records are values (`generate_immutable_records` in
// mobile-sdk/uniffi.toml). test_kotlin.py checks that kotlinc refuses this file.

import dev.switchboard.sdk.OutgoingMessage

fun edit(message: OutgoingMessage) {
    message.text = "changed behind the SDK's back"
}
