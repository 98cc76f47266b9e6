# A "maximal" configuration for tests/options_read.rs: every module enabled and every option of the core modules
# set, so that the reads that depend on a condition (an enabled service, a user with a password, a file
# system stage 1 mounts) happen. Values are valid but otherwise arbitrary. When an option is added to the core
# modules, set it here too (the test names the options nothing read).
{ config, lib, pkgs, ... }:
{
  system.name = "maximal";
  system.stateVersion = "25.11";
  system.activationScripts.greeting = "echo hello";
  system.activationScripts.ordered = { text = "echo after greeting"; deps = [ "greeting" ]; };
  assertions = [ { assertion = true; message = "never shown"; } ];

  boot.kernelParams = [ "quiet" ];
  boot.kernelModules = [ "loop" ];
  boot.initrd.availableKernelModules = [ "virtio_blk" ];
  boot.initrd.kernelModules = [ "virtio_pci" ];
  boot.initrd.checkJournalingFS = true;
  boot.initrd.deviceTimeout = 20;
  boot.loader.grub.enable = true;
  boot.loader.grub.device = "/dev/vda";
  boot.loader.grub.devices = [ "/dev/vdb" ];
  boot.loader.grub.efiSupport = true;
  boot.loader.grub.efiInstallAsRemovable = false;
  boot.loader.grub.configurationLimit = 10;
  boot.loader.grub.extraConfig = "serial --unit=0 --speed=115200";
  boot.loader.grub.extraEntries = "menuentry 'Firmware setup' { fwsetup }";
  boot.loader.timeout = 3;
  boot.loader.systemd-boot.enable = false;
  boot.loader.systemd-boot.configurationLimit = 5;
  boot.loader.systemd-boot.editor = false;
  boot.loader.efi.canTouchEfiVariables = true;
  boot.loader.efi.efiSysMountPoint = "/boot/efi";

  fileSystems."/" = { device = "/dev/disk/by-label/rixos"; fsType = "ext4"; };
  fileSystems."/var/lib/data" = { label = "data"; fsType = "ext4"; options = [ "noatime" ]; neededForBoot = true; };
  fileSystems.backup = { mountPoint = "/srv/backup"; device = "/dev/vdc1"; fsType = "xfs"; options = [ "nofail" ]; };
  swapDevices = [ { device = "/swapfile"; size = 512; } { device = "/dev/vdd2"; } ];

  networking.hostName = "maximal";
  networking.domain = "example.org";
  networking.useDHCP = true;
  networking.nameservers = [ "192.0.2.53" ];
  networking.interfaces.eth1 = { useDHCP = false; ipv4.addresses = [ { address = "192.0.2.10"; prefixLength = 24; } ]; };
  networking.firewall = {
    enable = true;
    allowedTCPPorts = [ 443 ];
    allowedUDPPorts = [ 53 ];
    allowedTCPPortRanges = [ { from = 8000; to = 8010; } ];
    allowedUDPPortRanges = [ { from = 60000; to = 60010; } ];
    interfaces.eth1 = {
      allowedTCPPorts = [ 8080 ];
      allowedUDPPorts = [ 5353 ];
      allowedTCPPortRanges = [ { from = 9000; to = 9001; } ];
      allowedUDPPortRanges = [ { from = 9100; to = 9101; } ];
    };
    trustedInterfaces = [ "eth2" ];
    allowPing = true;
    pingLimit = "2/second";
    logRefusedConnections = true;
    logRefusedPackets = true;
    logRefusedUnicastsOnly = false;
    rejectPackets = true;
    checkReversePath = true;
    logReversePathDrops = true;
    extraInputRules = "ip saddr 198.51.100.0/24 accept";
  };

  time.timeZone = "Europe/Amsterdam";
  i18n.defaultLocale = "nl_NL.UTF-8";
  console.keyMap = "dvorak";
  console.useXkbConfig = false;
  console.font = "Lat15-Terminus16";
  services.xserver.layout = "de";
  services.xserver.xkbVariant = "nodeadkeys";
  services.xserver.xkbOptions = "ctrl:nocaps";
  services.xserver.xkbModel = "pc105";

  users.mutableUsers = false;
  users.users.alice = {
    isNormalUser = true;
    uid = 1001;
    description = "Alice";
    extraGroups = [ "wheel" "media" ];
    hashedPassword = "$6$salt$hash";
    openssh.authorizedKeys.keys = [ "ssh-ed25519 AAAA alice@example" ];
  };
  users.users.bob = {
    isNormalUser = true;
    group = "media";
    home = "/srv/bob";
    createHome = true;
    shell = pkgs.bash;
    initialHashedPassword = "$6$salt$initial";
  };
  users.users.carol = { isNormalUser = true; initialPassword = "changeme"; };
  users.users.daemon-user = { name = "svc"; isSystemUser = true; group = "svc"; };
  users.groups.media = { gid = 2000; members = [ "carol" ]; };
  users.groups.svc = { name = "svc"; };

  security.sudo = {
    enable = true;
    wheelNeedsPassword = false;
    extraRules = [
      { users = [ "bob" ]; commands = [ { command = "ALL"; options = [ "NOPASSWD" ]; } ]; }
      { groups = [ "media" ]; host = "maximal"; runAs = "root"; commands = [ "/run/current-system/sw/bin/id" ]; }
    ];
    extraConfig = "Defaults lecture = never\n";
  };
  security.wrappers.ping-admin = {
    source = "${pkgs.iputils-ping}/bin/ping"; program = "ping-admin"; owner = "root"; group = "media";
    setuid = false; setgid = true; capabilities = "cap_net_raw+p"; permissions = "u+rx,g+rx";
  };

  environment.systemPackages = [ pkgs.less ];
  environment.variables.EDITOR = "vi";
  environment.shellAliases.ll = "ls -l";
  environment.etc."motd".text = "welcome\n";
  environment.etc."issue.net" = { source = ./all-options.nix; mode = "0644"; target = "issue.net"; };

  services.getty.autologinUser = "alice";

  services.openssh = {
    enable = true;
    ports = [ 2222 ];
    openFirewall = true;
    settings.PermitRootLogin = "no";
    settings.PasswordAuthentication = false;
    extraConfig = "MaxAuthTries 3";
  };

  services.nginx = {
    enable = true;
    user = "www";
    group = "www";
    virtualHosts."a.example" = {
      serverName = "a.example";
      root = "/var/www/a";
      listen = [ { addr = "127.0.0.1"; port = 8081; } ];
      extraConfig = "index index.html;";
      locations."/api" = { proxyPass = "http://127.0.0.1:9000"; extraConfig = "proxy_buffering off;"; };
      locations."/static" = { root = "/var/www/static"; };
    };
  };

  nix.gc = { automatic = true; dates = "weekly"; options = "--delete-older-than 30d"; persistent = false; randomizedDelaySec = "45min"; };

  systemd.defaultUnit = "multi-user.target";
  systemd.maskedUnits = [ "systemd-random-seed.service" ];
  systemd.tmpfiles.rules = [ "d /var/lib/example 0755 root root -" ];
  systemd.services.example = {
    enable = true;
    description = "An example service";
    wantedBy = [ "multi-user.target" ];
    after = [ "network.target" ];
    before = [ "shutdown.target" ];
    wants = [ "network-online.target" ];
    requires = [ "example.socket" ];
    unitConfig.Documentation = "man:example(8)";
    serviceConfig.Type = "simple";
    script = "exec sleep infinity";
    environment.GREETING = "hello";
    path = [ pkgs.coreutils ];
  };
  systemd.sockets.example = {
    description = "An example socket";
    wantedBy = [ "sockets.target" ];
    after = [ "network.target" ];
    before = [ "example.service" ];
    wants = [ "network.target" ];
    requires = [ "network.target" ];
    unitConfig.Documentation = "man:example(8)";
    listenStreams = [ "127.0.0.1:7000" ];
    socketConfig.Accept = false;
  };
  systemd.timers.example = {
    description = "An example timer";
    wantedBy = [ "timers.target" ];
    after = [ "time-sync.target" ];
    before = [ "shutdown.target" ];
    wants = [ "time-sync.target" ];
    requires = [ "time-sync.target" ];
    unitConfig.Documentation = "man:example(8)";
    timerConfig.OnCalendar = "daily";
  };
  systemd.paths.example = {
    description = "An example path unit";
    wantedBy = [ "multi-user.target" ];
    after = [ "local-fs.target" ];
    before = [ "shutdown.target" ];
    wants = [ "local-fs.target" ];
    requires = [ "local-fs.target" ];
    unitConfig.Documentation = "man:example(8)";
    pathConfig.PathChanged = "/etc/example";
  };
  systemd.targets.example = {
    description = "An example target";
    wantedBy = [ "multi-user.target" ];
    after = [ "network.target" ];
    before = [ "shutdown.target" ];
    wants = [ "example.service" ];
    requires = [ "example.service" ];
    unitConfig.AllowIsolate = true;
  };
  # A disabled unit: its options are read only to leave it out.
  systemd.services.disabled = { enable = false; script = "true"; };
}
