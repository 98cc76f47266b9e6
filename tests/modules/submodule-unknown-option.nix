# expect-error: The option `users.bob.extraGroup' does not exist.
# expect-error: submodule-unknown-option.nix:14'
# expect-error: Did you mean `users.bob.extraGroups'?
# A typo inside a submodule is found by `check` alone, without using any value.
let
  lib = import <rixos/lib.nix>;
  user = {
    options.extraGroups = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; };
  };
  r = lib.evalModules {
    modules = [
      { options.users = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule user); default = { }; }; }
      { users.alice.extraGroups = [ "wheel" ]; }
      { users.bob = { extraGroup = [ "wheel" ]; }; }
    ];
  };
in r.check
