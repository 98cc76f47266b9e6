# Evaluates a system configuration: the core modules plus the user's, with `pkgs` the Debian package set.
{ configuration, pkgs ? import <rixpkgs> { }, extraModules ? [ ] }:
let
  lib = import <rixos/lib.nix>;
  utils = import ./build-support.nix { inherit pkgs lib; };
in
lib.evalModules {
  specialArgs = { modulesPath = "/«nix-internal»/rixos/nixos"; };
  modules = import ./module-list.nix ++ extraModules ++ [
    { _file = "rixos/nixos/eval-config.nix"; config._module.args = { pkgs = pkgs // { inherit (utils) rixos; }; inherit utils; }; }
    configuration
  ];
}
