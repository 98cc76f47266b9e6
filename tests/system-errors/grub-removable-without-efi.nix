# expect-error: boot.loader.grub.efiInstallAsRemovable needs boot.loader.grub.efiSupport = true
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  boot.loader.grub.efiInstallAsRemovable = true;
}
