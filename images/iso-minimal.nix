# The minimal live ISO (`rixos image build --format iso-minimal` without -c): the full Debian kernel for real
# hardware, DHCP on every wired interface, root logged in automatically on tty1 and the serial console (no
# password is set; sshd starts only once root has a password or an authorized key), rixos itself and the tools
# an install needs.
{ config, lib, pkgs, modulesPath, ... }:
{
  imports = [ "${modulesPath}/iso-image.nix" ];

  networking.hostName = "rixos-live";
  networking.useDHCP = true;
  services.getty.autologinUser = "root";

  services.openssh.enable = true;
  services.openssh.settings.PermitRootLogin = "yes";
  # Off until there is a way in: a password for root or a key in root's authorized_keys (checked when either
  # file changes, by the path unit below).
  systemd.services.sshd.wantedBy = lib.mkForce [ ];
  systemd.services.sshd.serviceConfig.ExecCondition = "${pkgs.bash}/bin/bash -c '[ -s /root/.ssh/authorized_keys ] || ! grep -q \"^root:[!*]*:\" /etc/shadow'";
  systemd.paths.sshd-when-reachable = {
    description = "Start sshd once root can log in";
    wantedBy = [ "multi-user.target" ];
    pathConfig = { PathChanged = [ "/etc/shadow" "/root/.ssh/authorized_keys" ]; Unit = "sshd.service"; };
  };

  environment.systemPackages = with pkgs; [
    rixos util-linux e2fsprogs dosfstools gdisk parted cryptsetup-bin
  ];

  # What `rixos install` builds the installed system from, with no network, beyond the live system's own
  # closure: GRUB's tools and its BIOS and UEFI module sets (the live GRUB images are built beforehand, not
  # from these), the initrd's shell, and the time zones (the live system has none set).
  system.extraDependencies = with pkgs; [ grub-common grub-pc-bin grub-efi-amd64-bin busybox-static tzdata ];
}
