//! The `cipher` world's bindings (see the witgen crate).

fn main() {
    witgen::bindings(Some("wit/cipher.wit".as_ref()), "rvm:cipher/cipher");
}
