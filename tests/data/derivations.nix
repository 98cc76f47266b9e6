# Derivations of every kind, instantiated by Nix 2.8 in tests/drv_vs_nix.rs: multi-output, fixed-output (flat,
# recursive, sha1), with input derivations, a path literal and toFile sources, and strings that need escapes.
let
  simple = derivation { name = "foo"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo hi > $out"]; };
  multi = derivation { name = "multi"; outputs = ["out" "lib" "dev"]; system = "x86_64-linux"; builder = "/bin/sh"; flag = true; off = false; none = null; list = [1 "two" 3]; text = "line1\nline2\t\"q\" \\ end"; };
  fixedFlat = derivation { name = "fo"; system = "x86_64-linux"; builder = "/bin/sh"; outputHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; outputHashAlgo = "sha256"; };
  fixedRec = derivation { name = "forec"; system = "x86_64-linux"; builder = "/bin/sh"; outputHashMode = "recursive"; outputHash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; };
  fixedSha1 = derivation { name = "fosha1"; system = "x86_64-linux"; builder = "/bin/sh"; outputHashMode = "recursive"; outputHashAlgo = "sha1"; outputHash = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; };
  src = ./derivation-source.txt;
  file = builtins.toFile "script.sh" "echo ${builtins.toFile "inner" "x"}";
  dependent = derivation { name = "dependent"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ file "${src}" ]; a = simple; b = "${multi.lib} ${multi.dev}"; c = fixedFlat; d = fixedRec; e = fixedSha1; };
  onDependent = derivation { name = "on-dependent"; system = "x86_64-linux"; builder = "/bin/sh"; x = dependent; };
in { inherit simple multi fixedFlat fixedRec fixedSha1 dependent onDependent; }
