# The package set of a Debian channel snapshot (written into the snapshot as default.nix by rixos).
# `import <rixpkgs> {}` gives one attribute per binary package; each is the unpacked, self-contained package.
{ ... }:
let
  index = builtins.rixosDebianIndex ./.;
  fetchurl = import <nix/fetchurl.nix>;

  deb = m: fetchurl {
    url = "${index.mirror}/${m.filename}";
    sha256 = m.sha256;
    name = m.debName;
  };

  # Packages unpacked as they are, to run patchelf for everything else: patchelf and the libraries it needs,
  # run through this libc's dynamic loader.
  unpatched = name:
    let m = index.packages.${name}.deb;
    in derivation {
      name = "${m.storeName}-unpatched";
      system = "x86_64-linux";
      builder = "builtin:unpack-deb";
      debs = [ (deb m) ];
      packages = [ m.name ];
      patchelf = "";
    };
  patchelfTool = "${unpatched "patchelf"}/bin/patchelf";
  patchelfLibs = map unpatched [ "libc6" "libgcc-s1" "libstdc++6" ];

  # One derivation per group of packages that depend on each other (most groups are one package).
  unpack = g: derivation {
    name = g.name;
    system = "x86_64-linux";
    builder = "builtin:unpack-deb";
    # Raised whenever what builtin:unpack-deb makes of a package changes, so outputs are made again.
    unpackVersion = "3";
    outputs = g.outputs;
    debs = map deb g.members;
    packages = map (m: m.name) g.members;
    deps = map (d: self.${d}) g.depends;
    # The dynamic loader for ELF interpreters: the group's own when it holds libc6 (or is below it).
    libc = if g.belowLibc then "" else self.libc6;
    # Interpreters for scripts (`#!/bin/sh`, `#!/usr/bin/perl`): Debian lets every package assume them.
    tools = if g.needsTools then [ self.dash self.bash self.perl-base ] else [ ];
    patchelf = patchelfTool;
    inherit patchelfLibs;
  };

  package = p:
    let drv = unpack p.group;
    in (if p.output == "out" then drv else drv.${p.output}) // {
      pname = p.name;
      inherit (p) version description;
      # The Debian packages this one's group depends on, by name (a metapackage's real package, say).
      debDepends = p.group.depends;
      # The .deb itself, as downloaded (a fixed-output derivation checked against the signed index).
      src = deb p.deb;
    };

  # Names NixOS users expect, for packages Debian names differently. Kept small, listed here only.
  aliases = {
    openssh = self.openssh-client;
    gnugrep = self.grep;
    gnused = self.sed;
    gnutar = self.tar;
    utillinux = self.util-linux;
  };

  self = builtins.mapAttrs (_: package) index.packages // aliases;
in
self
