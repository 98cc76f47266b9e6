# expect-error: boot.loader.grub.efiInstallAsRemovable and boot.loader.efi.canTouchEfiVariables exclude each other
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  boot.loader.grub.efiSupport = true;
  boot.loader.grub.efiInstallAsRemovable = true;
  boot.loader.efi.canTouchEfiVariables = true;
}
