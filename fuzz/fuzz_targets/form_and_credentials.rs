#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::form_and_credentials(data));
