//! `rixos options`: search the options of the system configuration (the core modules', and those of a
//! configuration's own modules with `-c`), print them all as JSON, or write a static, searchable HTML page.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::configuration::{Configuration, configuration_expr};
use super::instantiate::evaluate_json;

#[derive(Debug, Args)]
pub struct OptionsArgs {
    /// Words every shown option's name or description contains (case does not matter).
    pub query: Vec<String>,
    /// Include the options declared by this configuration's modules.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print every option as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a searchable page of every option to DIR/index.html.
    #[arg(long, value_name = "DIR")]
    pub html: Option<PathBuf>,
}

/// One option, as the Nix side documents it.
struct Entry {
    name: String,
    description: String,
    kind: String,
    default: Option<String>,
    example: Option<String>,
    declarations: Vec<String>,
}

fn entries(root: &Path, args: &OptionsArgs) -> Result<(String, Vec<Entry>)> {
    let configuration = match &args.config {
        Some(c) => Configuration::File(c),
        None => Configuration::Builtin("{ }"),
    };
    let json = evaluate_json(
        root,
        configuration_expr(
            configuration,
            "import <rixos/nixos/options-doc.nix> { inherit configuration; }",
        )?,
    )?;
    let value: serde_json::Value = serde_json::from_str(&json).context("reading the options")?;
    let text = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let list = value.as_array().context("the options are a list")?;
    let entries = list
        .iter()
        .map(|v| Entry {
            name: text(v, "name").unwrap_or_default(),
            description: text(v, "description").unwrap_or_default(),
            kind: text(v, "type").unwrap_or_default(),
            default: text(v, "default"),
            example: text(v, "example"),
            declarations: v
                .get("declarations")
                .and_then(|d| d.as_array())
                .map(|d| d.iter().filter_map(|x| x.as_str()).map(str::to_string).collect())
                .unwrap_or_default(),
        })
        .collect();
    Ok((json, entries))
}

pub fn run(root: &Path, args: &OptionsArgs) -> Result<()> {
    let (json, all) = entries(root, args)?;
    if args.json {
        println!("{json}");
        return Ok(());
    }
    if let Some(dir) = &args.html {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let page = HTML.replace("@OPTIONS@", &json.replace("</", "<\\/"));
        let file = dir.join("index.html");
        std::fs::write(&file, page).with_context(|| format!("writing {}", file.display()))?;
        println!("{} ({} options)", file.display(), all.len());
        return Ok(());
    }
    let words: Vec<String> = args.query.iter().map(|q| q.to_lowercase()).collect();
    let shown: Vec<&Entry> = all
        .iter()
        .filter(|e| {
            let hay = format!("{} {}", e.name, e.description).to_lowercase();
            words.iter().all(|w| hay.contains(w))
        })
        .collect();
    if shown.is_empty() {
        bail!("no option matches {:?}", args.query.join(" "));
    }
    for e in shown {
        println!("{}", e.name);
        println!("    {}", e.description);
        println!("    type: {}", e.kind);
        if let Some(d) = &e.default {
            println!("    default: {d}");
        }
        if let Some(x) = &e.example {
            println!("    example: {x}");
        }
        // rixos' own modules by their name inside rixos; a configuration's own by their full path.
        let declared: Vec<&str> = e
            .declarations
            .iter()
            .map(|d| d.strip_prefix("/«nix-internal»/").unwrap_or(d))
            .collect();
        println!("    declared in: {}", declared.join(", "));
        println!();
    }
    Ok(())
}

/// The options page: the options as JSON, a search box, and a list filtered as one types.
const HTML: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rixos options</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}input{width:100%;font-size:1.2em;padding:.3em}
.o{border-bottom:1px solid #ddd;padding:.5em 0}.n{font-family:monospace;font-weight:bold}.m{color:#555;font-size:.9em}</style>
</head><body><h1>rixos options</h1>
<input id="q" type="search" placeholder="Search options by name or description" autofocus>
<p id="count"></p><div id="list"></div>
<script>
const options = @OPTIONS@;
const list = document.getElementById("list"), count = document.getElementById("count");
function esc(s) { return String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\"":"&quot;"}[c])); }
function show(q) {
  const words = q.toLowerCase().split(/\s+/).filter(w => w);
  const hits = options.filter(o => words.every(w => (o.name + " " + o.description).toLowerCase().includes(w)));
  count.textContent = hits.length + " of " + options.length + " options";
  list.innerHTML = hits.map(o => '<div class="o"><div class="n">' + esc(o.name) + '</div><div>' + esc(o.description) +
    '</div><div class="m">type: ' + esc(o.type) + (o.default !== null ? ' · default: ' + esc(o.default) : '') +
    (o.example !== null ? ' · example: ' + esc(o.example) : '') + '</div></div>').join("");
}
const box = document.getElementById("q");
box.addEventListener("input", e => show(e.target.value));
// A search can be linked to: index.html?q=hostName
box.value = new URLSearchParams(location.search).get("q") || "";
show(box.value);
</script></body></html>
"#;
