# error: getting status of '@DIR@/missing.nix': No such file or directory
# error-line: (named in the `imports' at @DIR@/import-module-missing.nix:9)
# nix: none (rixos' module system)
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [
    { options.a = lib.mkOption { type = lib.types.int; default = 1; }; }
    {
      imports = [
        { a = 2; }
        ./missing.nix
      ];
    }
  ];
}).config.a
