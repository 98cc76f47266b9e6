# Helpers for derivations of the system that run real programs in the sandbox (module argument `utils`).
{ pkgs, lib }:
{
  # `runCommand name env script`: runs `script` with bash (-e) and coreutils on PATH, plus `env.path`'s bin dirs.
  runCommand = name: env: script: derivation ({
    inherit name;
    system = "x86_64-linux";
    builder = "${pkgs.bash}/bin/bash";
    args = [ "-e" "-c" script ];
    PATH = lib.concatMapStringsSep ":" (p: "${p}/bin:${p}/sbin") ([ pkgs.coreutils ] ++ env.path or [ ]);
  } // builtins.removeAttrs env [ "path" ]);
}
