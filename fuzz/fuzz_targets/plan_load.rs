//! Fuzz `plan::load` (the YAML parser, the span-keeping deserializer and validation) with
//! arbitrary text: see ../invariants.rs for what must hold.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../invariants.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    // Plans are UTF-8 text (`plan::read` refuses anything else before `load`).
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(why) = invariants::check_plan_text(text) {
            panic!("{why}\n--- input\n{text}");
        }
    }
});
