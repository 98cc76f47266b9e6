//! Derivations as Nix writes them in `.drv` files (ATerm), their store paths, and hashDerivationModulo, which
//! gives input-addressed outputs their paths.
//!
//! Printing is canonical (every list sorted, the exact escapes Nix uses), so a parsed .drv prints back to the
//! same bytes and its path is recomputed exactly.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::hash::{hex, sha256};
use super::path::{FileIngestion, StorePath, StorePathError, fixed_output_path, output_path, text_path};

#[derive(Debug, Error)]
pub enum DerivationError {
    #[error("{file}: malformed derivation at byte {offset}: {message}")]
    Parse {
        file: String,
        offset: usize,
        message: String,
    },
    #[error("derivation {name}: {source}")]
    Path { name: String, source: StorePathError },
    #[error("derivation {name}: fixed output has an unknown hash algorithm {algo:?}")]
    BadAlgo { name: String, algo: String },
    #[error("derivation {name}: fixed output hash {hash:?} is not hex")]
    BadHash { name: String, hash: String },
    #[error("derivation {drv}: cannot read input derivation {input}: {message}")]
    Input {
        drv: String,
        input: String,
        message: String,
    },
}

/// One output: its path ("" while being computed), and for a fixed output the algorithm (`sha256`,
/// `r:sha256`, ...) and expected hash in hex.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    pub path: String,
    pub hash_algo: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Derivation {
    pub outputs: BTreeMap<String, Output>,
    /// Input derivation paths and the outputs used of each.
    pub input_drvs: BTreeMap<String, BTreeSet<String>>,
    pub input_srcs: BTreeSet<String>,
    pub system: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

impl Derivation {
    /// The ATerm text, exactly as Nix writes it.
    pub fn to_aterm(&self) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("Derive([");
        list(&mut out, &self.outputs, |out, (name, o)| {
            out.push('(');
            strings(out, [name.as_str(), &o.path, &o.hash_algo, &o.hash]);
            out.push(')');
        });
        out.push_str("],[");
        list(&mut out, &self.input_drvs, |out, (path, outputs)| {
            out.push('(');
            string(out, path);
            out.push_str(",[");
            list(out, outputs, |out, o| string(out, o));
            out.push_str("])");
        });
        out.push_str("],[");
        list(&mut out, &self.input_srcs, |out, s| string(out, s));
        out.push_str("],");
        strings(&mut out, [self.system.as_str(), &self.builder]);
        out.push_str(",[");
        list(&mut out, &self.args, |out, a| string(out, a));
        out.push_str("],[");
        list(&mut out, &self.env, |out, (k, v)| {
            out.push('(');
            strings(out, [k.as_str(), v]);
            out.push(')');
        });
        out.push_str("])");
        out
    }

    /// Parses a .drv; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Derivation, DerivationError> {
        let mut p = Parser {
            bytes: text.as_bytes(),
            pos: 0,
            file,
        };
        let drv = p.derivation()?;
        if p.pos != p.bytes.len() {
            return Err(p.error("text after the derivation"));
        }
        Ok(drv)
    }

    /// The derivation's name, from its environment (`name`), as Nix names the .drv and outputs after it.
    pub fn name(&self) -> &str {
        self.env.get("name").map_or("", String::as_str)
    }

    /// The store path of this derivation's .drv file.
    pub fn drv_path(&self) -> Result<StorePath, DerivationError> {
        let path_err = |source| DerivationError::Path {
            name: self.name().to_string(),
            source,
        };
        let mut references = Vec::new();
        for path in self.input_srcs.iter().chain(self.input_drvs.keys()) {
            references.push(StorePath::parse(path).map_err(path_err)?);
        }
        text_path(
            &format!("{}.drv", self.name()),
            &sha256(self.to_aterm().as_bytes()),
            &references,
        )
        .map_err(path_err)
    }

    /// The single fixed output, if this is a fixed-output derivation.
    pub fn fixed_output(&self) -> Option<&Output> {
        match self.outputs.iter().next() {
            Some((name, out)) if self.outputs.len() == 1 && name == "out" && !out.hash.is_empty() => Some(out),
            _ => None,
        }
    }

    /// hashDerivationModulo: a fixed output's hash depends only on its content hash and path; otherwise the
    /// ATerm with each input derivation replaced by its own modulo hash (in hex). `input_modulo` gives an input
    /// derivation's modulo hash from its path.
    pub fn hash_modulo(
        &self,
        input_modulo: &mut dyn FnMut(&str) -> Result<[u8; 32], DerivationError>,
    ) -> Result<[u8; 32], DerivationError> {
        if let Some(out) = self.fixed_output() {
            return Ok(sha256(
                format!("fixed:out:{}:{}:{}", out.hash_algo, out.hash, out.path).as_bytes(),
            ));
        }
        let mut replaced = self.clone();
        replaced.input_drvs = BTreeMap::new();
        for (path, outputs) in &self.input_drvs {
            let key = hex(&input_modulo(path)?);
            replaced
                .input_drvs
                .entry(key)
                .or_default()
                .extend(outputs.iter().cloned());
        }
        Ok(sha256(replaced.to_aterm().as_bytes()))
    }

    /// Fills in every output path (and the environment variable of the same name), as `derivation` does:
    /// fixed outputs from their hash, the others from the modulo hash of the derivation with outputs blanked.
    pub fn fill_output_paths(
        &mut self,
        input_modulo: &mut dyn FnMut(&str) -> Result<[u8; 32], DerivationError>,
    ) -> Result<(), DerivationError> {
        let name = self.name().to_string();
        let path_err = |source| DerivationError::Path {
            name: name.clone(),
            source,
        };
        if let Some(out) = self.fixed_output().cloned() {
            let (ingestion, algo) = match out.hash_algo.strip_prefix("r:") {
                Some(algo) => (FileIngestion::Recursive, algo),
                None => (FileIngestion::Flat, out.hash_algo.as_str()),
            };
            if !["md5", "sha1", "sha256", "sha512"].contains(&algo) {
                return Err(DerivationError::BadAlgo {
                    name: name.clone(),
                    algo: algo.to_string(),
                });
            }
            let digest = decode_hex(&out.hash).ok_or_else(|| DerivationError::BadHash {
                name: name.clone(),
                hash: out.hash.clone(),
            })?;
            let path = fixed_output_path(&name, ingestion, algo, &digest)
                .map_err(path_err)?
                .to_string();
            self.set_output_path("out", path);
            return Ok(());
        }
        for output in self.outputs.keys().cloned().collect::<Vec<_>>() {
            self.set_output_path(&output, String::new());
        }
        let modulo = self.hash_modulo(input_modulo)?;
        for output in self.outputs.keys().cloned().collect::<Vec<_>>() {
            let path = output_path(&name, &output, &modulo).map_err(path_err)?.to_string();
            self.set_output_path(&output, path);
        }
        Ok(())
    }

    fn set_output_path(&mut self, output: &str, path: String) {
        self.env.insert(output.to_string(), path.clone());
        if let Some(out) = self.outputs.get_mut(output) {
            out.path = path;
        }
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn list<I: IntoIterator>(out: &mut String, items: I, mut each: impl FnMut(&mut String, I::Item)) {
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
}

fn strings<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    list(out, items, string);
}

fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    file: &'a str,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> DerivationError {
        DerivationError::Parse {
            file: self.file.to_string(),
            offset: self.pos,
            message: message.into(),
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), DerivationError> {
        if self.bytes[self.pos..].starts_with(token.as_bytes()) {
            self.pos += token.len();
            Ok(())
        } else {
            Err(self.error(format!("expected {token:?}")))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn string(&mut self) -> Result<String, DerivationError> {
        self.expect("\"")?;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => break,
                Some(b'\\') => {
                    self.pos += 1;
                    let c = self.peek().ok_or_else(|| self.error("unterminated escape"))?;
                    out.push(match c {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        other => other,
                    });
                }
                Some(c) => out.push(c),
            }
            self.pos += 1;
        }
        self.pos += 1;
        String::from_utf8(out).map_err(|_| self.error("a string that is not UTF-8"))
    }

    /// `[item,item,...]`
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DerivationError>,
    ) -> Result<Vec<T>, DerivationError> {
        self.expect("[")?;
        let mut items = Vec::new();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(items);
        }
        loop {
            items.push(item(self)?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(items);
                }
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn tuple<const N: usize>(&mut self) -> Result<[String; N], DerivationError> {
        self.expect("(")?;
        let mut fields: [String; N] = std::array::from_fn(|_| String::new());
        for (i, field) in fields.iter_mut().enumerate() {
            if i > 0 {
                self.expect(",")?;
            }
            *field = self.string()?;
        }
        self.expect(")")?;
        Ok(fields)
    }

    fn sorted_unique<K: Ord + Clone + std::fmt::Debug>(&self, keys: &[K], what: &str) -> Result<(), DerivationError> {
        if keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err(self.error(format!("{what} are not sorted and unique")));
        }
        Ok(())
    }

    fn derivation(&mut self) -> Result<Derivation, DerivationError> {
        self.expect("Derive(")?;
        let outputs = self.list(|p| p.tuple::<4>())?;
        self.sorted_unique(&outputs.iter().map(|o| &o[0]).collect::<Vec<_>>(), "outputs")?;
        self.expect(",")?;
        let input_drvs = self.list(|p| {
            p.expect("(")?;
            let path = p.string()?;
            p.expect(",")?;
            let outputs = p.list(|p| p.string())?;
            p.sorted_unique(&outputs, "input derivation outputs")?;
            p.expect(")")?;
            Ok((path, outputs.into_iter().collect::<BTreeSet<_>>()))
        })?;
        self.sorted_unique(
            &input_drvs.iter().map(|i| &i.0).collect::<Vec<_>>(),
            "input derivations",
        )?;
        self.expect(",")?;
        let input_srcs = self.list(|p| p.string())?;
        self.sorted_unique(&input_srcs, "input sources")?;
        self.expect(",")?;
        let system = self.string()?;
        self.expect(",")?;
        let builder = self.string()?;
        self.expect(",")?;
        let args = self.list(|p| p.string())?;
        self.expect(",")?;
        let env = self.list(|p| p.tuple::<2>())?;
        self.sorted_unique(&env.iter().map(|e| &e[0]).collect::<Vec<_>>(), "environment variables")?;
        self.expect(")")?;
        Ok(Derivation {
            outputs: outputs
                .into_iter()
                .map(|[name, path, hash_algo, hash]| (name, Output { path, hash_algo, hash }))
                .collect(),
            input_drvs: input_drvs.into_iter().collect(),
            input_srcs: input_srcs.into_iter().collect(),
            system,
            builder,
            args,
            env: env.into_iter().map(|[k, v]| (k, v)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_inputs(path: &str) -> Result<[u8; 32], DerivationError> {
        panic!("unexpected input {path}")
    }

    fn simple() -> Derivation {
        let mut drv = Derivation {
            system: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), "echo hi > $out".into()],
            ..Default::default()
        };
        drv.outputs.insert("out".into(), Output::default());
        for (k, v) in [("builder", "/bin/sh"), ("name", "foo"), ("system", "x86_64-linux")] {
            drv.env.insert(k.into(), v.into());
        }
        drv
    }

    #[test]
    fn simple_derivation_gets_nix_paths() {
        // Vector from nix-formats.md: derivation { name = "foo"; builder = "/bin/sh"; args = [...]; }.
        let mut drv = simple();
        drv.fill_output_paths(&mut no_inputs).unwrap();
        assert_eq!(
            drv.outputs["out"].path,
            "/nix/store/dcqg0jsvjgqnvh7ibxs5ciinmdmh9rnd-foo"
        );
        assert_eq!(
            drv.drv_path().unwrap().to_string(),
            "/nix/store/rm9v4vd19fmxa6jwy1pz47af8k058rf2-foo.drv"
        );
    }

    #[test]
    fn printing_escapes_exactly_what_nix_escapes_and_parses_back() {
        let mut drv = simple();
        drv.env.insert("text".into(), "a\"b\\c\nd\re\tf\u{1}é".into());
        let aterm = drv.to_aterm();
        assert!(aterm.contains(r#"("text","a\"b\\c\nd\re\tf"#), "{aterm}");
        assert_eq!(Derivation::parse(&aterm, "x.drv").unwrap(), drv);
    }

    #[test]
    fn malformed_derivations_are_refused_with_the_place() {
        for (text, expected) in [
            ("Derive([", "expected"),
            (
                "Derive([],[],[],\"s\",\"b\",[],[(\"b\",\"1\"),(\"a\",\"2\")])",
                "environment variables are not sorted",
            ),
            (
                "Derive([],[],[],\"s\",\"b\",[],[]) trailing",
                "text after the derivation",
            ),
            ("Derive([],[],[],\"s,\"b\",[],[])", "expected"),
            ("derive", "expected \"Derive(\""),
        ] {
            let err = Derivation::parse(text, "bad.drv").unwrap_err().to_string();
            assert!(
                err.starts_with("bad.drv: malformed derivation at byte") && err.contains(expected),
                "{text}: {err}"
            );
        }
    }
}
