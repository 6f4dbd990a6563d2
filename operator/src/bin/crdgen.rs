//! Prints the `CascorWorkerPool` CustomResourceDefinition as YAML.
//!
//! `crds/cascorworkerpools.cascor.juniper.dev.yaml` holds this output; regenerate it with
//! `make crds`.

fn main() -> anyhow::Result<()> {
    print!("{}", cascor_operator::crd_yaml()?);
    Ok(())
}
