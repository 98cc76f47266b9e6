# expect-error: The option `fileSystems."/data".options.keys.key' does not exist.
# expect-error: submodule-unknown-nested.nix:19'
# expect-error: Did you mean `fileSystems."/data".options.keys.keys'?
# Names that are not identifiers are quoted as NixOS quotes them; typos are found below nested sets, inside
# submodules in lists and nullOr, and under definitions behind mkIf and mkMerge.
let
  lib = import <rixos/lib.nix>;
  inherit (lib) types mkOption;
  fs = {
    options.fsType = mkOption { type = types.str; default = "auto"; };
    options.options.keys.keys = mkOption { type = types.listOf types.str; default = [ ]; };
    options.extra = mkOption { type = types.nullOr (types.listOf (types.submodule { options.x = mkOption { type = types.int; }; })); default = null; };
  };
  r = lib.evalModules {
    modules = [
      { options.fileSystems = mkOption { type = types.attrsOf (types.submodule fs); default = { }; }; }
      { fileSystems."/".extra = [ { x = 1; } ]; }
      { fileSystems."/data" = lib.mkIf true (lib.mkMerge [ { fsType = "ext4"; } {
          options.keys.key = [ "k" ];
        } ]); }
    ];
  };
in r.check
