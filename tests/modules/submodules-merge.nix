# expect: { alice = { groups = [ "wheel" "audio" ]; home = "/home/alice"; uid = 1000; }; bob = { groups = [ ]; home = "/srv/bob"; uid = 1001; }; }
let
  lib = import <rixos/lib.nix>;
  user = { name, ... }: {
    options.uid = lib.mkOption { type = lib.types.int; };
    options.home = lib.mkOption { type = lib.types.str; default = "/home/${name}"; };
    options.groups = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
  };
  r = lib.evalModules {
    modules = [
      { options.users = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule user); default = { }; }; }
      { users.alice = { uid = 1000; groups = [ "wheel" ]; }; }
      { users.alice.groups = [ "audio" ]; users.bob = { uid = 1001; home = "/srv/bob"; }; }
    ];
  };
in lib.mapAttrs (_: u: removeAttrs u [ "_module" ]) r.config.users
