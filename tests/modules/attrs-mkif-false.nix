# expect: { s = { keep = "k"; }; sub = { c = { _module = { args = { }; check = true; }; v = 1; }; }; }
# In an attrsOf, a name whose definitions all vanish (mkIf false, mkMerge [ ], mkIf inside mkOverride) is not an
# attribute at all, as in NixOS: a submodule with required options is not evaluated for it.
let lib = import <rixos/lib.nix>; in
removeAttrs (lib.evalModules {
  modules = [
    { options.sub = lib.mkOption { type = lib.types.attrsOf (lib.types.submodule { options.v = lib.mkOption { type = lib.types.int; }; }); default = { }; };
      options.s = lib.mkOption { type = lib.types.attrsOf lib.types.str; default = { }; }; }
    ({ config, ... }: {
      sub.a = lib.mkIf false { v = 0; };
      sub.b = lib.mkMerge [ ];
      sub.c = lib.mkIf (config.s ? keep) { v = 1; };
      sub.d = lib.mkForce (lib.mkIf false { v = 2; });
      s.keep = "k";
      s.gone = lib.mkIf false "g";
    })
  ];
}).config [ "_module" ]
