# error: infinite recursion encountered
# at: 9:36
# nix: none (rixos' module system; Nix places this inside the module system's own files)
# An option defined in terms of itself is placed at the definition, not inside rixos' built-in lib.
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [
    { options.a = lib.mkOption { type = lib.types.int; }; }
    ({ config, ... }: { a = config.a + 1; })
  ];
}).config.a
