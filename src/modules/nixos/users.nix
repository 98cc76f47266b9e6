{ config, lib, pkgs, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.users;
  userOpts = { name, config, ... }: {
    options = {
      name = mkOption { type = types.str; default = name; description = "The user's name."; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "The user id; chosen when null."; };
      group = mkOption { type = types.str; default = if config.isNormalUser then "users" else "nogroup"; description = "The primary group."; };
      extraGroups = mkOption { type = types.listOf types.str; default = [ ]; description = "Other groups."; };
      description = mkOption { type = types.str; default = ""; description = "The full name (GECOS)."; };
      home = mkOption { type = types.str; default = if config.isNormalUser then "/home/${name}" else "/var/empty"; description = "The home directory."; };
      createHome = mkOption { type = types.bool; default = config.isNormalUser; description = "Whether to create the home directory."; };
      shell = mkOption { type = types.either types.package types.str; default = if config.isNormalUser then "${pkgs.bash}/bin/bash" else "/run/current-system/sw/bin/nologin"; defaultText = lib.literalExpression "bash for normal users, nologin for others"; description = "The login shell."; };
      isNormalUser = mkEnableOption "a normal (human) user: uid from 1000, group users, a home";
      isSystemUser = mkEnableOption "a system user: uid below 1000";
      hashedPassword = mkOption { type = types.nullOr types.str; default = null; description = "The password's hash (crypt(3), as `mkpasswd` prints it); `!` locks the password."; };
      initialHashedPassword = mkOption { type = types.nullOr types.str; default = null; description = "The hash set when the user is first created (kept afterwards when users are mutable)."; };
      initialPassword = mkOption { type = types.nullOr types.str; default = null; description = "The password set when the user is first created, in clear text (hashed on the machine at activation)."; };
      openssh.authorizedKeys.keys = mkOption { type = types.listOf types.singleLineStr; default = [ ]; description = "Public keys that may log in as this user."; };
    };
  };
  groupOpts = { name, ... }: {
    options.name = mkOption { type = types.str; default = name; description = "The group's name."; };
    options.gid = mkOption { type = types.nullOr types.int; default = null; description = "The group id; chosen when null."; };
    options.members = mkOption { type = types.listOf types.str; default = [ ]; description = "Members besides those naming it in extraGroups."; };
  };

  users = lib.attrValues cfg.users;
  # Stable ids: the given ones, then normal users from 1000 and system users from 999 down, by name.
  assignIds = from: step: taken: names:
    (lib.foldl' (acc: n:
      let next = lib.findFirst (i: !builtins.elem i (taken ++ acc.used)) 0 (lib.genList (i: from + step * i) 1000);
      in { used = acc.used ++ [ next ]; ids = acc.ids // { ${n} = next; }; }) { used = [ ]; ids = { }; } names).ids;
  givenUids = lib.filter (x: x != null) (map (u: u.uid) users);
  normalIds = assignIds 1000 1 givenUids (map (u: u.name) (lib.filter (u: u.uid == null && u.isNormalUser) users));
  systemIds = assignIds 999 (-1) givenUids (map (u: u.name) (lib.filter (u: u.uid == null && !u.isNormalUser) users));
  uidOf = u: if u.uid != null then u.uid else normalIds.${u.name} or systemIds.${u.name};

  groupNames = lib.unique (lib.attrNames cfg.groups ++ concatMapList (u: [ u.group ] ++ u.extraGroups) users);
  concatMapList = f: l: lib.concatLists (map f l);
  givenGids = { root = 0; wheel = 1; users = 100; nogroup = 65534; } // lib.mapAttrs (_: g: g.gid) (lib.filterAttrs (_: g: g.gid != null) cfg.groups);
  gidNames = lib.filter (g: !(givenGids ? ${g})) groupNames;
  autoGids = assignIds 999 (-1) (lib.attrValues givenGids ++ [ 0 ]) gidNames;
  gidOf = g: givenGids.${g} or autoGids.${g};
  membersOf = g: lib.unique ((cfg.groups.${g}.members or [ ]) ++ map (u: u.name) (lib.filter (u: builtins.elem g u.extraGroups) users));

  shellOf = u: toString u.shell;
  passwd = lib.concatMapStrings (u: "${u.name}:x:${toString (uidOf u)}:${toString (gidOf u.group)}:${u.description}:${u.home}:${shellOf u}\n") users;
  # `NAME:HASH:FLAG` lines for the activation: FLAG `set` when the configuration fixes the hash, `initial`
  # when it only gives the first one, `clear` for a clear-text initial password, `none` otherwise.
  shadowPlan = lib.concatMapStrings (u:
    if u.hashedPassword != null then "${u.name}\t${u.hashedPassword}\tset\n"
    else if u.initialHashedPassword != null then "${u.name}\t${u.initialHashedPassword}\tinitial\n"
    else if u.initialPassword != null then "${u.name}\t${u.initialPassword}\tclear\n"
    else "${u.name}\t!\tnone\n") users;
  clearPasswords = lib.any (u: u.hashedPassword == null && u.initialHashedPassword == null && u.initialPassword != null) users;
  group = lib.concatMapStrings (g: "${g}:x:${toString (gidOf g)}:${lib.concatStringsSep "," (membersOf g)}\n") ([ "root" ] ++ lib.filter (g: g != "root") groupNames);
in
{
  options.users = {
    mutableUsers = mkOption { type = types.bool; default = true; description = "Whether users and passwords may be changed outside the configuration."; };
    users = mkOption { type = types.attrsOf (types.submodule userOpts); default = { }; description = "User accounts, by name."; };
    groups = mkOption { type = types.attrsOf (types.submodule groupOpts); default = { }; description = "Groups, by name."; };
  };
  config = {
    assertions = map (u: { assertion = !(u.isNormalUser && u.isSystemUser); message = "users.users.${u.name}: isNormalUser and isSystemUser cannot both be set."; }) users;
    users.users.root = {
      uid = 0;
      group = "root";
      description = lib.mkDefault "System administrator";
      home = "/root";
      shell = lib.mkDefault "${pkgs.bash}/bin/bash";
      createHome = lib.mkDefault true;
    };
    users.users.nobody = { uid = 65534; group = "nogroup"; description = "Unprivileged account"; home = "/var/empty"; isSystemUser = true; };
    # Copied, not linked: programs that change users (passwd, useradd) replace these files.
    environment.etc.passwd = { text = passwd; mode = "0644"; };
    environment.etc.group = { text = group; mode = "0644"; };
    system.activationScripts.users = {
      deps = [ "etc" ];
      text = ''
        # /etc/shadow: the configuration's hashes; with mutable users, a hash set on the machine (passwd) is
        # kept unless the configuration fixes it. Homes are created once, owned by their user.
        declare -A current=()
        if [ -f /etc/shadow ]; then
          while IFS=: read -r name hash rest; do current[$name]=$hash; done < /etc/shadow
        fi
        while IFS=$'\t' read -r name hash how; do
          old=''${current[$name]:-}
          case "$how" in
            set) ;;
            initial|none) if ${lib.boolToString cfg.mutableUsers} && [ -n "$old" ]; then hash=$old; fi ;;
            clear) if ${lib.boolToString cfg.mutableUsers} && [ -n "$old" ]; then hash=$old; else hash=$(printf '%s' "$hash" | ${lib.optionalString clearPasswords "${pkgs.openssl}/bin/openssl"} passwd -6 -stdin); fi ;;
          esac
          echo "$name:$hash:1::::::"
        done < ${builtins.toFile "shadow-plan" shadowPlan} > /etc/shadow.tmp
        chmod 0600 /etc/shadow.tmp
        mv -f /etc/shadow.tmp /etc/shadow
        ${lib.concatMapStrings (u: lib.optionalString u.createHome ''
          if [ ! -d ${u.home} ]; then mkdir -p ${u.home}; chown ${toString (uidOf u)}:${toString (gidOf u.group)} ${u.home}; chmod 0700 ${u.home}; fi
        '') users}
      '';
    };
  };
}
