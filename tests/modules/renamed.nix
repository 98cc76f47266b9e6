# expect: { new = "value"; warnings = [ "The option `old' has been renamed to `new'." ]; }
let lib = import <rixos/lib.nix>; in
let c = (lib.evalModules {
  modules = [
    { options.new = lib.mkOption { type = lib.types.str; };
      options.warnings = lib.mkOption { type = lib.types.listOf lib.types.str; default = [ ]; }; }
    (lib.mkRenamedOptionModule [ "old" ] [ "new" ])
    { old = "value"; }
  ];
}).config; in { inherit (c) new warnings; }
