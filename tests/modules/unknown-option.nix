# expect-error: The option `services.opensh' does not exist.
# expect-error: unknown-option.nix:9'
# expect-error: Did you mean `services.openssh'?
let lib = import <rixos/lib.nix>; in
let r = lib.evalModules {
  modules = [
    { options.services.openssh.enable = lib.mkEnableOption "sshd"; }
    {
      services.opensh.enable = true;
    }
  ];
}; in builtins.seq r.check r.config.services
