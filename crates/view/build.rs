//! Generates the Perfetto message types from `proto/perfetto_subset.proto` with a pure-Rust
//! protobuf compiler, so that `cargo build` needs neither `protoc` nor network access.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/perfetto_subset.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
