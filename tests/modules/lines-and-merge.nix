# expect: "one\ntwo\nthree"
let lib = import <rixos/lib.nix>; in
(lib.evalModules {
  modules = [
    { options.text = lib.mkOption { type = lib.types.lines; }; }
    { text = lib.mkMerge [ "one" (lib.mkIf true "two") (lib.mkIf false "never") ]; }
    { text = "three"; }
  ];
}).config.text
