//! Realising derivation graphs in the sandbox. Derivations are instantiated by Nix 2.8 into a chroot store
//! (`nix-instantiate --store ROOT`), their builder is Debian's static busybox added to that store, and rixos
//! builds them there; Nix then checks the result.

use std::fs;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A chroot store and a folder of Nix expressions whose `bb` is a directory holding busybox.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("bb")).unwrap();
        // In a directory, so the builder's file name stays "busybox" and busybox treats argv[1] as the applet.
        fs::copy("/bin/busybox", dir.path().join("bb/busybox")).expect("static busybox (run scripts/setup)");
        Fixture { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Writes `body` (where `mk name script extraAttrs` makes a busybox derivation) and instantiates it.
    fn instantiate(&self, file: &str, body: &str) -> String {
        let expr = self.dir.path().join(file);
        let prelude = "let bb = \"${./bb}/busybox\"; \
                       mk = name: script: attrs: derivation ({ inherit name; system = \"x86_64-linux\"; \
                       builder = bb; args = [ \"sh\" \"-c\" \"b=${bb}; ${script}\" ]; } // attrs); in ";
        fs::write(&expr, format!("{prelude}{body}")).unwrap();
        let out = Command::new("nix-instantiate")
            .arg("--store")
            .arg(self.root())
            .arg(&expr)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nix-instantiate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn rixos(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(self.root())
            .args(args)
            .output()
            .unwrap()
    }

    fn realise(&self, drv: &str) -> String {
        let out = self.rixos(&["store", "realise", drv]);
        assert!(
            out.status.success(),
            "realise failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn real(&self, store_path: &str) -> PathBuf {
        self.root().join(store_path.trim_start_matches('/'))
    }

    /// The store directory's entry ending in `suffix` (e.g. "-bb" for a path named bb), if any.
    fn store_entry(&self, suffix: &str) -> Option<PathBuf> {
        let entries = fs::read_dir(self.root().join("nix/store")).unwrap();
        entries
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with(suffix))
    }

    fn nix_verify_is_clean(&self) {
        let out = Command::new("nix-store")
            .arg("--store")
            .arg(self.root())
            .args(["--verify", "--check-contents"])
            .output()
            .unwrap();
        assert!(out.status.success());
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            let benign =
                line.contains("'nixbld'") || line.starts_with("reading the Nix") || line.starts_with("checking ");
            assert!(benign, "nix-store --verify --check-contents: {line}");
        }
    }
}

const GRAPH: &str = "let \
    a = mk \"a\" \"$b mkdir -p $out; echo hello-from-a > $out/greeting; $b ln -s greeting $out/link\" {}; \
    b = mk \"b\" \"$b mkdir $out; echo uses-$a > $out/ref; $b cat $a/greeting > $out/copy\" { inherit a; }; \
    in b";

#[test]
fn a_graph_builds_in_order_and_nix_agrees_with_the_result() {
    let fx = Fixture::new();
    let drv = fx.instantiate("graph.nix", GRAPH);
    let first = fx.rixos(&["store", "realise", &drv]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let said = String::from_utf8_lossy(&first.stderr);
    assert_eq!(said.matches("building '").count(), 2, "{said}");
    let out = String::from_utf8(first.stdout).unwrap().trim().to_string();
    assert_eq!(
        fs::read_to_string(fx.real(&out).join("copy")).unwrap(),
        "hello-from-a\n"
    );

    let ours = fx.rixos(&["store", "query", "--requisites", &out]).stdout;
    let theirs = Command::new("nix-store")
        .arg("--store")
        .arg(fx.root())
        .args(["-qR", &out])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs));
    assert_eq!(String::from_utf8_lossy(&ours).lines().count(), 2, "b must reference a");
    let deriver = fx.rixos(&["store", "query", "--deriver", &out]).stdout;
    assert_eq!(String::from_utf8_lossy(&deriver).trim(), drv);
    fx.nix_verify_is_clean();

    // Valid outputs are reused: nothing is built a second time.
    let again = fx.rixos(&["store", "realise", &drv]);
    assert!(again.status.success() && !String::from_utf8_lossy(&again.stderr).contains("building"));
    assert!(
        fs::read_dir(fx.root().join("nix/var/nix/builds"))
            .unwrap()
            .next()
            .is_none(),
        "build dirs left over"
    );
    assert_eq!(fx.store_entry(".lock"), None, "a lock file was left in the store");
}

#[test]
fn the_sandbox_holds_the_builder_in() {
    let fx = Fixture::new();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let secret = fx.dir.path().join("host-secret");
    fs::write(&secret, "do not read").unwrap();
    let script = format!(
        "$b mkdir $out; r=$out/report; \
         if $b nc -w 2 127.0.0.1 {port} < /dev/null; then echo network=open >> $r; else echo network=blocked >> $r; fi; \
         if $b cat {secret} 2>/dev/null; then echo host-file=read >> $r; else echo host-file=invisible >> $r; fi; \
         if echo x > /escape 2>/dev/null; then echo write-root=allowed >> $r; else echo write-root=denied >> $r; fi; \
         if echo x > ${{bb}} 2>/dev/null; then echo write-input=allowed >> $r; else echo write-input=denied >> $r; fi; \
         echo x > /nix/store/stray-file; \
         echo uid=$($b id -u) pid=$$ home=$HOME path=$PATH top=$NIX_BUILD_TOP tmp=$TMPDIR pwd=$($b pwd) >> $r; \
         echo hostname=$($b hostname) >> $r; \
         echo '#!/bin/sh' > $out/suid; $b chmod 4755 $out/suid; $b chmod 2755 $out",
        secret = secret.display(),
    );
    let body = format!("mk \"probe\" \"{}\" {{}}", script.replace('"', "\\\""));
    let drv = fx.instantiate("probe.nix", &body);
    let out = fx.realise(&drv);
    let report = fs::read_to_string(fx.real(&out).join("report")).unwrap();
    for expected in [
        "network=blocked",
        "host-file=invisible",
        "write-root=denied",
        "write-input=denied",
        "uid=30001 pid=1 home=/homeless-shelter path=/path-not-set top=/build tmp=/build pwd=/build",
        "hostname=localhost",
    ] {
        assert!(
            report.contains(expected),
            "missing {expected:?} in the sandbox report:\n{report}"
        );
    }
    assert!(listener.accept().is_err(), "the builder reached the host's loopback");
    assert!(
        !fx.root().join("nix/store/stray-file").exists(),
        "a write outside the outputs reached the store"
    );
    let mode = fs::metadata(fx.real(&out).join("suid")).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o555, "setuid survived: {mode:o}");
    let dir_mode = fs::metadata(fx.real(&out)).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o7777, 0o555, "setgid survived: {dir_mode:o}");
    fx.nix_verify_is_clean();
}

#[test]
fn a_failing_builder_shows_its_log_and_registers_nothing() {
    let fx = Fixture::new();
    let drv = fx.instantiate(
        "fail.nix",
        "mk \"fails\" \"echo compiling; echo 'error: it broke' >&2; $b mkdir $out; exit 3\" {}",
    );
    let out = fx.rixos(&["store", "realise", &drv]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("failed with exit status: 3"), "{said}");
    assert!(
        said.contains("  | compiling") && said.contains("  | error: it broke"),
        "{said}"
    );
    assert!(said.contains("full log: ") && said.contains("-fails.drv.log"), "{said}");
    assert_eq!(
        fx.store_entry("-fails"),
        None,
        "a failed build left its output in the store"
    );
}

#[test]
fn a_fixed_output_hash_mismatch_names_both_hashes_and_registers_nothing() {
    let fx = Fixture::new();
    // sha256 of "hello"; the builder writes "hullo".
    let body = "mk \"fo\" \"printf hullo > $out\" { outputHashAlgo = \"sha256\"; \
                outputHash = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"; }";
    let drv = fx.instantiate("fo.nix", body);
    let out = fx.rixos(&["store", "realise", &drv]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("hash mismatch in fixed-output derivation"), "{said}");
    assert!(
        said.contains("specified: sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        "{said}"
    );
    assert!(said.contains("got:       sha256:"), "{said}");
    assert!(!fx.real("/nix/store/nqf0xn3i5yddaqga5lmixksnxg099q5c-fo").exists());

    // The right bytes give Nix's path for this fixed output.
    let good = "mk \"fo\" \"printf hello > $out\" { outputHashAlgo = \"sha256\"; \
                outputHash = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"; }";
    let drv = fx.instantiate("fo-good.nix", good);
    assert_eq!(fx.realise(&drv), "/nix/store/nqf0xn3i5yddaqga5lmixksnxg099q5c-fo");
    fx.nix_verify_is_clean();
}

#[test]
fn a_build_killed_midway_is_rebuilt_cleanly() {
    let fx = Fixture::new();
    let drv = fx.instantiate(
        "slow.nix",
        "mk \"slow\" \"$b mkdir $out; echo part > $out/a; $b sleep 2; echo done > $out/b\" {}",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(fx.root())
        .args(["store", "realise", &drv])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(200));

    let out = fx.realise(&drv);
    assert_eq!(fs::read_to_string(fx.real(&out).join("b")).unwrap(), "done\n");
    let verify = fx.rixos(&["store", "verify", "--check-contents"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    fx.nix_verify_is_clean();
}

#[test]
fn two_realisations_at_once_build_once() {
    let fx = Fixture::new();
    let drv = fx.instantiate("once.nix", "mk \"once\" \"$b sleep 1; $b mkdir $out\" {}");
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(fx.root())
            .args(["store", "realise", &drv])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (one, two) = (start(), start());
    let (one, two) = (one.wait_with_output().unwrap(), two.wait_with_output().unwrap());
    assert!(one.status.success() && two.status.success());
    assert_eq!(one.stdout, two.stdout);
    let builds = [&one, &two]
        .iter()
        .filter(|o| String::from_utf8_lossy(&o.stderr).contains("building"))
        .count();
    assert_eq!(builds, 1, "the output was built {builds} times");
    assert_eq!(fx.store_entry(".lock"), None, "a lock file was left in the store");
}

#[test]
fn quiet_prints_only_results_and_errors_and_verbose_shows_builders_as_they_run() {
    let fx = Fixture::new();
    let talk = fx.instantiate(
        "talk.nix",
        "mk \"talk\" \"echo compiling; echo 'note: x' >&2; $b mkdir $out\" {}",
    );
    let verbose = fx.rixos(&["-v", "store", "realise", &talk]);
    let said = String::from_utf8_lossy(&verbose.stderr);
    assert!(verbose.status.success(), "{said}");
    assert!(
        said.contains("talk> compiling\n") && said.contains("talk> note: x\n"),
        "{said}"
    );
    let log = fx
        .root()
        .join("nix/var/nix/log/drvs")
        .join(format!("{}.log", &talk["/nix/store/".len()..]));
    assert_eq!(
        fs::read_to_string(log).unwrap(),
        "compiling\nnote: x\n",
        "-v changed the log"
    );

    let hush = fx.instantiate("hush.nix", "mk \"hush\" \"echo compiling; $b mkdir $out\" {}");
    let quiet = fx.rixos(&["-q", "store", "realise", &hush]);
    assert!(quiet.status.success());
    assert_eq!(
        String::from_utf8_lossy(&quiet.stderr),
        "",
        "-q printed more than errors"
    );
    assert!(String::from_utf8_lossy(&quiet.stdout).trim().ends_with("-hush"));

    let broken = fx.instantiate("broken.nix", "mk \"broken\" \"exit 4\" {}");
    let failed = fx.rixos(&["-q", "store", "realise", &broken]);
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(!failed.status.success());
    assert!(
        !said.contains("building") && said.contains("failed with exit status: 4"),
        "{said}"
    );
}

#[test]
fn realising_something_not_in_the_store_is_a_clear_error() {
    let fx = Fixture::new();
    let _ = fx.instantiate("graph.nix", GRAPH);
    let missing = "/nix/store/00000000000000000000000000000000-missing.drv";
    let out = fx.rixos(&["store", "realise", missing]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("{missing} is not a valid path")));
}

/// Serves `/good` ("hello") and `/bad` ("hullo", as a tampered mirror would) on loopback until the test ends.
fn serve_hello() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 2048];
            let n = std::io::Read::read(&mut stream, &mut request).unwrap_or(0);
            let body = if String::from_utf8_lossy(&request[..n]).starts_with("GET /good ") {
                "hello"
            } else {
                "hullo"
            };
            let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n{body}");
            let _ = std::io::Write::write_all(&mut stream, reply.as_bytes());
        }
    });
    port
}

fn fetchurl(name: &str, url: &str) -> String {
    format!(
        "derivation {{ name = \"{name}\"; system = \"builtin\"; builder = \"builtin:fetchurl\"; url = \"{url}\"; \
         outputHashMode = \"flat\"; outputHashAlgo = \"sha256\"; \
         outputHash = \"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"; }}"
    )
}

#[test]
fn builtin_fetchurl_downloads_and_refuses_a_tampered_file() {
    let fx = Fixture::new();
    let port = serve_hello();
    let good = fx.instantiate("good.nix", &fetchurl("fo", &format!("http://127.0.0.1:{port}/good")));
    let out = fx.realise(&good);
    // Nix's path for a flat sha256 fixed output of "hello" named fo (nix-formats.md).
    assert_eq!(out, "/nix/store/nqf0xn3i5yddaqga5lmixksnxg099q5c-fo");
    assert_eq!(fs::read_to_string(fx.real(&out)).unwrap(), "hello");

    let bad = fx.instantiate("bad.nix", &fetchurl("fo-bad", &format!("http://127.0.0.1:{port}/bad")));
    let output = fx.rixos(&["store", "realise", &bad]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("hash mismatch in fixed-output derivation"), "{said}");
    assert_eq!(
        fx.store_entry("-fo-bad"),
        None,
        "the tampered download reached the store"
    );
    fx.nix_verify_is_clean();
}

#[test]
fn a_derivation_for_another_platform_is_refused() {
    let fx = Fixture::new();
    let drv = fx.instantiate(
        "arm.nix",
        "mk \"arm\" \"$b mkdir $out\" { system = \"aarch64-linux\"; }",
    );
    let output = fx.rixos(&["store", "realise", &drv]);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("is for the platform \"aarch64-linux\""), "{said}");
}

#[test]
fn builtin_buildenv_makes_a_profile_of_packages() {
    let fx = Fixture::new();
    let body = "let \
        a = mk \"a\" \"$b mkdir -p $out/bin $out/share/a; echo a > $out/bin/tool-a; echo a > $out/share/a/doc\" {}; \
        c = mk \"c\" \"$b mkdir -p $out/bin; echo c > $out/bin/tool-c\" {}; \
        in derivation { name = \"user-environment\"; system = \"builtin\"; builder = \"builtin:buildenv\"; \
             manifest = builtins.toFile \"manifest.nix\" \"[ ]\"; \
             derivations = [ \"true\" 5 1 a \"true\" 5 1 c ]; }";
    let drv = fx.instantiate("env.nix", body);
    let out = fx.realise(&drv);
    let env = fx.real(&out);
    for (link, package, file) in [
        ("bin/tool-a", "-a", "bin/tool-a"),
        ("bin/tool-c", "-c", "bin/tool-c"),
        ("share", "-a", "share"),
    ] {
        let target = fs::read_link(env.join(link)).unwrap().to_string_lossy().into_owned();
        assert!(
            target.starts_with("/nix/store/") && target.ends_with(&format!("{package}/{file}")),
            "{link} -> {target}"
        );
    }
    assert!(
        fs::symlink_metadata(env.join("bin")).unwrap().is_dir(),
        "bin is shared, so a real directory"
    );
    assert!(
        fs::read_link(env.join("manifest.nix"))
            .unwrap()
            .to_string_lossy()
            .ends_with("-manifest.nix")
    );
    // The links make the profile refer to both packages and the manifest.
    let references = fx.rixos(&["store", "query", "--references", &out]).stdout;
    assert_eq!(
        String::from_utf8_lossy(&references).lines().count(),
        3,
        "{}",
        String::from_utf8_lossy(&references)
    );
    fx.nix_verify_is_clean();
}

#[test]
fn verify_repair_rebuilds_damaged_outputs_and_explains_added_paths() {
    let fx = Fixture::new();
    let drv = fx.instantiate("graph.nix", GRAPH);
    let out = fx.realise(&drv);
    let a = String::from_utf8(fx.rixos(&["store", "query", "--references", &out]).stdout).unwrap();
    let a = a.trim().to_string();
    // Damage: one output edited, the other deleted.
    let copy = fx.real(&out).join("copy");
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&copy, "tampered").unwrap();
    fs::remove_dir_all(fx.real(&a)).unwrap();

    let broken = fx.rixos(&["store", "verify", "--check-contents"]);
    assert!(!broken.status.success());
    let repaired = fx.rixos(&["store", "verify", "--check-contents", "--repair"]);
    let said = String::from_utf8_lossy(&repaired.stderr);
    assert!(repaired.status.success(), "{said}");
    assert!(
        said.contains(&format!("repaired {out}")) && said.contains(&format!("repairing '{a}'")),
        "{said}"
    );
    // `a` is repaired either in its own turn or first, as a missing input of `b`.
    assert!(fx.real(&a).join("greeting").exists());
    assert_eq!(fs::read_to_string(&copy).unwrap(), "hello-from-a\n");
    fx.nix_verify_is_clean();

    // An added path has no derivation to rebuild it from.
    let source = fx.dir.path().join("note");
    fs::write(&source, "original").unwrap();
    let added = String::from_utf8(fx.rixos(&["store", "add", &source.display().to_string()]).stdout).unwrap();
    let real_added = fx.real(added.trim());
    fs::set_permissions(&real_added, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&real_added, "changed").unwrap();
    let unrepairable = fx.rixos(&["store", "verify", "--check-contents", "--repair"]);
    let said = String::from_utf8_lossy(&unrepairable.stderr);
    assert!(!unrepairable.status.success());
    assert!(
        said.contains("it was added, not built, so rixos cannot recreate it"),
        "{said}"
    );
}

#[test]
fn a_missing_input_is_named_and_nothing_is_registered() {
    let fx = Fixture::new();
    let drv = fx.instantiate("lonely.nix", "mk \"lonely\" \"$b mkdir $out\" {}");
    // The builder (busybox, an input source) vanishes from the store behind the database's back.
    let bb = fx.store_entry("-bb").expect("busybox in the store");
    fs::remove_dir_all(&bb).unwrap();
    let output = fx.rixos(&["store", "realise", &drv]);
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("-bb is registered but missing from the store"), "{said}");
    assert_eq!(
        fx.store_entry("-lonely"),
        None,
        "a build with a missing input left its output"
    );
}

#[test]
fn downloads_ahead_of_a_build_log_plain_progress_lines() {
    let fx = Fixture::new();
    let port = serve_hello();
    let expr = fx.dir.path().join("fetch.nix");
    fs::write(&expr, fetchurl("fo", &format!("http://127.0.0.1:{port}/good"))).unwrap();
    let out = fx.rixos(&["build", "--no-out-link", expr.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // stderr is not a terminal here: lines for the log, no bar redrawn with \r.
    assert!(
        said.contains("downloading: started (1)\n") && said.contains("downloading: done in ") && !said.contains('\r'),
        "{said}"
    );
}
