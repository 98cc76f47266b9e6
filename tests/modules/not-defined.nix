# expect-error: The option `needed' is used but not defined.
let lib = import <rixos/lib.nix>; in
(lib.evalModules { modules = [ { options.needed = lib.mkOption { type = lib.types.str; }; } ]; }).config.needed
