fn main() {
    // macOS needs `-undefined dynamic_lookup` for an extension module; a no-op elsewhere
    pyo3_build_config::add_extension_module_link_args();
}
