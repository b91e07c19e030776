//! The uniffi-bindgen command, built from this crate so its version always matches the
//! library's. Run it through `mobile-sdk/bindgen.sh`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
