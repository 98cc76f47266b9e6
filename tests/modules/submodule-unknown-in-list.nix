# expect-error: The option `swap."[definition 2-entry 1]".sizee' does not exist.
# expect-error: submodule-unknown-in-list.nix:12'
# expect-error: Did you mean `swap."[definition 2-entry 1]".size'?
let
  lib = import <rixos/lib.nix>;
  inherit (lib) types mkOption;
  r = lib.evalModules {
    modules = [
      { options.swap = mkOption { type = types.listOf (types.submodule { options.size = mkOption { type = types.int; }; }); default = [ ]; }; }
      { swap = [ { size = 1; } ]; }
      { swap = [
          { sizee = 2; }
        ]; }
    ];
  };
in r.check
