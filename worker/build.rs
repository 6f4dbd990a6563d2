include!("build-support.rs");

fn main() {
    add_libtorch_rpath();
    export_libtorch_version();
}

/// Records the version of the linked libtorch as `JUNIPER_LIBTORCH_VERSION` for the
/// worker's build-info metric. A PyTorch wheel states it in `torch/version.py` (one folder
/// above the library folder); a standalone libtorch archive in `build-version`.
fn export_libtorch_version() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib_dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        return;
    };
    let lib_dir = std::path::Path::new(&lib_dir);
    let Some(root) = lib_dir.parent() else {
        return;
    };

    let from_wheel = std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("__version__ = "))
                .map(|value| value.trim().trim_matches(['\'', '"']).to_owned())
        });
    let from_archive = || {
        std::fs::read_to_string(root.join("build-version"))
            .ok()
            .map(|text| text.trim().to_owned())
    };

    if let Some(version) = from_wheel
        .or_else(from_archive)
        .filter(|version| !version.is_empty())
    {
        println!("cargo:rustc-env=JUNIPER_LIBTORCH_VERSION={version}");
    }
}
