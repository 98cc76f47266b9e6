//! Evaluating a system configuration for the commands that build from one (`rixos system`, `rixos image`,
//! `rixos options`). The configuration's path reaches the Nix side as a string argument, never pasted into
//! the expression's text, so a directory named with a space, `$`, `"` or `;` is just a name.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::instantiate::{BuildArgs, BuiltOutput, ExprArgs, build_outputs};

/// Where the configuration comes from.
#[derive(Debug, Clone, Copy)]
pub enum Configuration<'a> {
    /// The user's file (`-c`).
    File(&'a Path),
    /// A module built into rixos, such as `<rixos/images/iso-minimal.nix>`, or `{ }`.
    Builtin(&'static str),
}

impl Configuration<'_> {
    /// An expression taking `{ configFile }` that evaluates to the configuration module, with the argument
    /// to pass (the file, made absolute).
    fn module_expr(&self) -> Result<(&'static str, Option<PathBuf>)> {
        match self {
            Configuration::File(path) => {
                let absolute = std::fs::canonicalize(path)
                    .with_context(|| format!("reading the configuration {}", path.display()))?;
                Ok(("(/. + configFile)", Some(absolute)))
            }
            Configuration::Builtin(expr) => Ok((expr, None)),
        }
    }
}

/// `ExprArgs` for `body`, an expression in which `configuration` is the configuration's module.
pub fn configuration_expr(configuration: Configuration, body: &str) -> Result<ExprArgs> {
    let (module, file) = configuration.module_expr()?;
    let mut args = ExprArgs::for_expr(format!(
        "{{ configFile ? null }}: let configuration = {module}; in {body}"
    ));
    if let Some(file) = file {
        let file = file
            .to_str()
            .with_context(|| format!("the configuration's path {} is not UTF-8", file.display()))?
            .to_string();
        args.argstr = vec!["configFile".to_string(), file];
    }
    Ok(args)
}

/// What a build of a configuration's `config.system.build.<attr>` needs.
pub struct SystemBuild<'a> {
    pub configuration: Configuration<'a>,
    /// Modules added to the configuration, as Nix expressions (`<rixos/nixos/qemu-vm.nix>`).
    pub extra_modules: &'a [&'a str],
    pub attr: &'a str,
    /// The link to the result (a GC root); none for a system that becomes a generation of the profile.
    pub out_link: Option<PathBuf>,
    pub show_trace: bool,
}

fn system_expr(build: &SystemBuild) -> Result<ExprArgs> {
    let body = format!(
        "let r = import <rixos/nixos/eval-config.nix> {{ inherit configuration; extraModules = [ {} ]; }}; \
         in builtins.seq r.check r.config.system.build.{}",
        build.extra_modules.join(" "),
        build.attr
    );
    let mut expr = configuration_expr(build.configuration, &body)?;
    expr.show_trace = build.show_trace;
    Ok(expr)
}

/// Evaluates the configuration, refuses definitions without an option before anything is built, builds
/// `config.system.build.<attr>` and links it.
pub fn build_system(root: &Path, build: &SystemBuild) -> Result<Vec<BuiltOutput>> {
    build_outputs(
        root,
        &BuildArgs {
            expr: system_expr(build)?,
            out_link: build.out_link.clone().unwrap_or_else(|| PathBuf::from("result")),
            no_out_link: build.out_link.is_none(),
        },
    )
}

/// Evaluates the configuration to the derivation of `config.system.build.<attr>`, building nothing.
pub fn instantiate_system(root: &Path, build: &SystemBuild) -> Result<Vec<crate::store::path::StorePath>> {
    super::instantiate::instantiate_drvs(root, &system_expr(build)?)
}
