# expect-error: The option `users.bob.home' does not exist.
# expect-error: submodule-unknown-option-used.nix:13'
# A submodule's value checks its own definitions when it is used, as in NixOS, even without `check`.
let
  lib = import <rixos/lib.nix>;
  user = {
    options.uid = lib.mkOption { type = lib.types.int; };
  };
  r = lib.evalModules {
    modules = [
      { options.users = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule user); default = { }; }; }
      { users.bob.uid = 1000; }
      { users.bob.home = "/srv/bob"; }
    ];
  };
in r.config.users.bob.uid
