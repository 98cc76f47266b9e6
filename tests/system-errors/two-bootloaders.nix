# expect-error: boot.loader.systemd-boot.enable and boot.loader.grub.enable are both true
{ ... }: {
  fileSystems."/".device = "/dev/vda1";
  boot.loader.grub.enable = true;
  boot.loader.systemd-boot.enable = true;
}
