include!("../build-support.rs");

fn main() {
    add_libtorch_rpath();
}
