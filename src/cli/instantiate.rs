//! `rixos instantiate` (nix-instantiate's flags) and `rixos build` (like nix-build).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::eval::eval::Settings;
use crate::eval::io::StoreIo;
use crate::eval::session::{AutoArg, Input, Output, Request, on_eval_thread, run};
use crate::store::local::LocalStore;
use crate::store::path::StorePath;

/// What nix-instantiate and nix-build share: the expression, its arguments and evaluation settings.
#[derive(Debug, Args)]
pub struct ExprArgs {
    /// The file to evaluate (`-` for standard input); default `./default.nix`.
    pub file: Option<String>,
    /// Evaluate EXPR instead of a file.
    #[arg(short = 'E', long = "expr", value_name = "EXPR")]
    pub expr: Option<String>,
    /// Select an attribute of the result (repeatable), like `a.b.0`.
    #[arg(short = 'A', long = "attr", value_name = "ATTR")]
    pub attr: Vec<String>,
    /// Pass NAME = EXPR to a top-level function.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], action = clap::ArgAction::Append)]
    pub arg: Vec<String>,
    /// Pass NAME = "VALUE" to a top-level function.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "VALUE"], action = clap::ArgAction::Append)]
    pub argstr: Vec<String>,
    /// Add to the search path used by `<name>` lookups (before NIX_PATH).
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Show the chain of evaluation frames that led to an error.
    #[arg(long, overrides_with = "no_show_trace")]
    pub show_trace: bool,
    /// Do not show the trace (the default).
    #[arg(long)]
    pub no_show_trace: bool,
    /// Allow impure builtins (accepted for compatibility; rixos evaluates impurely unless --pure-eval).
    #[arg(long)]
    pub impure: bool,
    /// Pure evaluation: getEnv gives "" and unhashed fetches are refused.
    #[arg(long)]
    pub pure_eval: bool,
    /// Experimental features (`parse-toml-timestamps` is recognised; others are accepted).
    #[arg(
        long = "extra-experimental-features",
        alias = "experimental-features",
        value_name = "FEATURES"
    )]
    pub features: Vec<String>,
    /// Lints of newer Nix versions on path and URL literals: accepted, not yet enforced.
    #[arg(long, value_name = "LEVEL")]
    pub lint_absolute_path_literals: Option<String>,
    #[arg(long, value_name = "LEVEL")]
    pub lint_short_path_literals: Option<String>,
    #[arg(long, value_name = "LEVEL")]
    pub lint_url_literals: Option<String>,
    /// Deepest nesting of function calls before evaluation stops with "stack overflow".
    #[arg(long, default_value_t = 10_000)]
    pub max_call_depth: usize,
}

#[derive(Debug, Args)]
pub struct InstantiateArgs {
    #[command(flatten)]
    pub expr: ExprArgs,
    /// Evaluate and print the value instead of writing derivations.
    #[arg(long)]
    pub eval: bool,
    /// With --eval: evaluate the whole value, not just its top.
    #[arg(long)]
    pub strict: bool,
    /// Print the value as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the value as XML.
    #[arg(long)]
    pub xml: bool,
    /// With --xml: leave out source positions.
    #[arg(long)]
    pub no_location: bool,
    /// Only parse, and print nothing but errors.
    #[arg(long)]
    pub parse: bool,
    /// Compute derivations and paths without writing to the store.
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub expr: ExprArgs,
    /// Name of the symlink to the first output (default `result`).
    #[arg(short = 'o', long = "out-link", default_value = "result")]
    pub out_link: PathBuf,
    /// Make no result symlink.
    #[arg(long)]
    pub no_out_link: bool,
}

impl ExprArgs {
    /// The arguments for evaluating `expr` with every default.
    pub fn for_expr(expr: String) -> ExprArgs {
        ExprArgs {
            file: None,
            expr: Some(expr),
            attr: Vec::new(),
            arg: Vec::new(),
            argstr: Vec::new(),
            include: Vec::new(),
            show_trace: false,
            no_show_trace: false,
            impure: false,
            pure_eval: false,
            features: Vec::new(),
            lint_absolute_path_literals: None,
            lint_short_path_literals: None,
            lint_url_literals: None,
            max_call_depth: 10_000,
        }
    }

    fn request(&self, output: Output, strict: bool, location: bool) -> Result<Request> {
        let input = match (&self.expr, self.file.as_deref()) {
            (Some(e), None) => Input::Expr(e.clone()),
            (Some(_), Some(_)) => bail!("give either a file or --expr, not both"),
            (None, Some("-")) => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading standard input")?;
                Input::Stdin(s)
            }
            // `'<rixpkgs>'` names a search path entry, as with nix-build.
            (None, Some(f)) if f.starts_with('<') && f.ends_with('>') => Input::Expr(format!("import {f}")),
            (None, Some(f)) => Input::File(PathBuf::from(f)),
            (None, None) => Input::File(PathBuf::from("default.nix")),
        };
        let mut args = Vec::new();
        for pair in self.arg.chunks(2) {
            args.push(AutoArg::Expr(pair[0].clone(), pair[1].clone()));
        }
        for pair in self.argstr.chunks(2) {
            args.push(AutoArg::Str(pair[0].clone(), pair[1].clone()));
        }
        let settings = Settings {
            show_trace: self.show_trace,
            max_call_depth: self.max_call_depth,
            pure: self.pure_eval,
            search_path: self.include.clone(),
            toml_timestamps: self
                .features
                .iter()
                .any(|f| f.split_whitespace().any(|x| x == "parse-toml-timestamps")),
            ..Settings::default()
        };
        Ok(Request {
            input,
            attr_paths: self.attr.clone(),
            args,
            strict,
            output,
            location,
            settings,
            extend: Some(extend_evaluator),
        })
    }
}

/// What rixos adds to the language: the Debian package set's index, and the module system.
fn extend_evaluator(ev: &mut crate::eval::eval::Evaluator) {
    crate::pkgs::set::install(ev);
    crate::modules::install(ev);
}

fn evaluate(mut request: Request, store_root: Option<PathBuf>, read_root: PathBuf) -> Result<String> {
    // `<rixpkgs>` falls back to the current snapshot of the default channel.
    if let Ok(current) = crate::pkgs::channel::Channels::new(&read_root).current()
        && let Some(path) = current.get(crate::pkgs::channel::DEFAULT_NAME)
    {
        request.settings.fallback_search_path.push(format!("rixpkgs={path}"));
    }
    let result = on_eval_thread(move || -> std::result::Result<String, String> {
        let io = match store_root {
            Some(root) => StoreIo::with_store(LocalStore::open(&root).map_err(|e| format!("error: {e:#}"))?),
            None => StoreIo::read_only(Some(&read_root)),
        };
        run(request, Box::new(io))
    });
    match result {
        Ok(out) => Ok(out),
        Err(rendered) => {
            eprintln!("{rendered}");
            std::process::exit(1);
        }
    }
}

pub fn instantiate(root: &Path, args: &InstantiateArgs) -> Result<()> {
    if args.parse {
        let (text, name) = match (&args.expr.expr, args.expr.file.as_deref()) {
            (Some(e), _) => (e.clone(), "«string»".to_string()),
            (None, Some("-") | None) => {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                (s, "«stdin»".to_string())
            }
            (None, Some(f)) => (
                std::fs::read_to_string(f).with_context(|| format!("reading {f}"))?,
                f.to_string(),
            ),
        };
        if let Err(e) = crate::eval::parse::parse(&text, &name) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    let output = if args.json {
        Output::Json
    } else if args.xml {
        Output::Xml
    } else if args.eval {
        Output::Value
    } else {
        Output::Derivations
    };
    let request = args.expr.request(output, args.strict, !args.no_location)?;
    let writes = output == Output::Derivations && !args.read_only;
    let out = evaluate(request, writes.then(|| root.to_path_buf()), root.to_path_buf())?;
    print!("{out}");
    Ok(())
}

/// Evaluates `expr` (strictly, nothing written) and gives its JSON.
pub fn evaluate_json(root: &Path, expr: ExprArgs) -> Result<String> {
    let request = expr.request(Output::Json, true, false)?;
    evaluate(request, None, root.to_path_buf())
}

/// Downloads at once during `rixos build`, at most (and at most one per core: once fetched, each download is
/// hashed and scanned, which is work for a core). `RIXOS_DOWNLOAD_JOBS` overrides it.
const DOWNLOAD_JOBS: usize = 4;

pub fn build(root: &Path, args: &BuildArgs) -> Result<()> {
    for built in build_outputs(root, args)? {
        println!("{}", built.path);
    }
    Ok(())
}

/// Evaluates `expr` to the derivations it gives, written to the store at `root`, building nothing.
pub fn instantiate_drvs(root: &Path, expr: &ExprArgs) -> Result<Vec<StorePath>> {
    let request = expr.request(Output::Derivations, false, false)?;
    let drvs = evaluate(request, Some(root.to_path_buf()), root.to_path_buf())?;
    Ok(drvs
        .lines()
        .map(StorePath::parse)
        .collect::<std::result::Result<Vec<_>, _>>()?)
}

/// One output `rixos build` made (or found valid), and the link made to it, if any.
pub struct BuiltOutput {
    pub path: StorePath,
    pub link: Option<PathBuf>,
}

/// What `rixos build` does, printing nothing: evaluate, realise, link; gives the outputs in order.
///
/// Each derivation's link has nix-build's name (`result`, `result-2`, ...; `-NAME` added for an output other
/// than `out`) and is a garbage collector root. Links are checked before anything is built, so a refused one
/// costs no build, and made only once every build succeeded, so a failure leaves the old links as they were.
pub fn build_outputs(root: &Path, args: &BuildArgs) -> Result<Vec<BuiltOutput>> {
    let request = args.expr.request(Output::Derivations, false, false)?;
    let drvs = evaluate(request, Some(root.to_path_buf()), root.to_path_buf())?;
    let mut store = LocalStore::open(root)?;
    store.set_builders(crate::builtin_builders());
    let wanted = drvs
        .lines()
        .map(StorePath::parse)
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut links = Vec::new();
    for (n, drv) in wanted.iter().enumerate() {
        let outputs = store.derivation_outputs(drv)?;
        let linked = match outputs.keys().collect::<Vec<_>>().as_slice() {
            _ if args.no_out_link => None,
            _ if outputs.contains_key("out") => Some("out".to_string()),
            [only] => Some(only.to_string()),
            _ => None,
        };
        let link = linked.map(|output| (output.clone(), out_link_name(&args.out_link, n, &output)));
        if let Some((_, link)) = &link {
            store.check_perm_root(link)?;
        }
        links.push(link);
    }
    // Downloads run ahead, a few at a time; the builds that need them follow in order.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = std::env::var("RIXOS_DOWNLOAD_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(DOWNLOAD_JOBS.min(cores));
    store.fetch_ahead(&wanted, jobs)?;
    let realised = wanted
        .iter()
        .map(|drv| store.realise(drv))
        .collect::<Result<Vec<_>>>()?;
    let mut built = Vec::new();
    for (outputs, link) in realised.iter().zip(links) {
        for (name, path) in outputs {
            let made = match &link {
                Some((output, link)) if output == name => {
                    store.add_perm_root(path, link)?;
                    Some(link.clone())
                }
                _ => None,
            };
            built.push(BuiltOutput {
                path: path.clone(),
                link: made,
            });
        }
    }
    Ok(built)
}

/// nix-build's name for the link to output `output` of the `n`th derivation (from 0).
fn out_link_name(prefix: &Path, n: usize, output: &str) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    if n > 0 {
        name.push(format!("-{}", n + 1));
    }
    if output != "out" {
        name.push(format!("-{output}"));
    }
    PathBuf::from(name)
}
