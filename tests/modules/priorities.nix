# expect: { a = "forced"; b = "plain"; c = "default-option"; d = "mkDefault"; }
let lib = import <rixos/lib.nix>; in
removeAttrs (lib.evalModules {
  modules = [
    { options = lib.genAttrs [ "a" "b" "c" "d" ] (n: lib.mkOption { type = lib.types.str; default = "default-option"; }); }
    { a = lib.mkForce "forced"; b = lib.mkDefault "mkDefault"; d = lib.mkDefault "mkDefault"; }
    { a = "plain"; b = "plain"; }
  ];
}).config [ "_module" ]
