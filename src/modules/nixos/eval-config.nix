# Evaluates a system configuration: the core modules plus the user's, with `pkgs` the Debian package set.
{ configuration, pkgs ? import <rixpkgs> { }, extraModules ? [ ] }:
let
  lib = import <rixos/lib.nix>;
  utils = import ./build-support.nix { inherit pkgs lib; };
in
let
  system = lib.evalModules {
    specialArgs = {
      modulesPath = "/«nix-internal»/rixos/nixos";
      # The configuration and the files it imports, for images that carry the configuration they were built
      # from (read lazily: only an image's derivation asks).
      configurationFile =
        if builtins.isPath configuration && !lib.hasPrefix "/«nix-internal»" (toString configuration) then toString configuration else null;
      configurationFiles = lib.unique (lib.filter (f: builtins.isString f && lib.hasPrefix "/" f && !lib.hasPrefix "/«nix-internal»" f && builtins.pathExists f)
        (map (m: m.file) system._module.collected));
    };
    modules = import ./module-list.nix ++ extraModules ++ [
      { _file = "rixos/nixos/eval-config.nix"; config._module.args = { pkgs = pkgs // { inherit (utils) rixos; }; inherit utils; }; }
      configuration
    ];
  };
in
system
