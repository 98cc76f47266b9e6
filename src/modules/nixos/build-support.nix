# Helpers for derivations of the system that run real programs in the sandbox (module argument `utils`).
{ pkgs, lib }:
{
  # NixOS's rule: stage 1 mounts these, whatever neededForBoot says (the rest are systemd's, from /etc/fstab).
  fsNeededForBoot = fs: fs.neededForBoot || builtins.elem fs.mountPoint [ "/" "/nix" "/nix/store" "/var" "/var/log" "/var/lib" "/etc" "/usr" ];

  # `runCommand name env script`: runs `script` with bash (-e) and coreutils on PATH, plus `env.path`'s bin dirs.
  runCommand = name: env: script: derivation ({
    inherit name;
    system = "x86_64-linux";
    builder = "${pkgs.bash}/bin/bash";
    args = [ "-e" "-c" script ];
    PATH = lib.concatMapStringsSep ":" (p: "${p}/bin:${p}/sbin") ([ pkgs.coreutils ] ++ env.path or [ ]);
  } // builtins.removeAttrs env [ "path" ]);

  # rixos itself, for the systems it builds: the running binary with its ELF interpreter and RUNPATH pointed
  # at the channel's libraries (the same Debian release rixos is built on).
  # The packages of the libraries rixos links (`readelf -d target/release/rixos`); theirs come with them.
  # On a system that carries rixos, the package it runs from (so the machine rebuilds itself with what it has).
  rixos = let libraries = with pkgs; [ libc6 libgcc-s1 libsquashfs1 libisoburn1 ]; in
    if builtins.rixosInstalled != null then builtins.rixosInstalled else derivation {
    name = "rixos";
    system = "x86_64-linux";
    builder = "${pkgs.bash}/bin/bash";
    PATH = "${pkgs.coreutils}/bin:${pkgs.patchelf}/bin";
    self = builtins.rixosSelf;
    args = [ "-e" "-c" ''
      mkdir -p $out/bin
      cp $self $out/bin/rixos
      chmod u+w $out/bin/rixos
      patchelf --set-interpreter ${pkgs.libc6}/lib64/ld-linux-x86-64.so.2 \
        --set-rpath ${lib.concatMapStringsSep ":" (p: "${p}/lib/x86_64-linux-gnu") libraries} $out/bin/rixos
      chmod 555 $out/bin/rixos
    '' ];
  };
}
