#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| strongroom_fuzz::request_object(data));
