# expect-error: The option `fileSystems."/data".fsTyp' does not exist.
# expect-error: filesystem-typo.nix:8'
# expect-error: Did you mean `fileSystems."/data".fsType'?
{ ... }: {
  fileSystems."/" = { device = "/dev/vda1"; fsType = "ext4"; };
  fileSystems."/data" = {
    device = "/dev/vdb1";
    fsTyp = "ext4";
  };
}
