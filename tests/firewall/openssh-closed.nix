# services.openssh.openFirewall = false leaves sshd's port closed.
# expect-not: tcp dport
{ ... }: {
  services.openssh.enable = true;
  services.openssh.openFirewall = false;
}
