{ config, lib, pkgs, options, ... }:
let
  inherit (lib) mkOption mkEnableOption types;
  cfg = config.users;
  # As NixOS's: a field of /etc/passwd or /etc/group, where a colon or a newline would start another one.
  passwdEntry = t: t // {
    name = "passwdEntry ${t.name}";
    description = "${t.description}, not containing newlines or colons";
    check = x: t.check x && builtins.match "[^:\n]*" x != null;
  };
  userOpts = { name, config, ... }: {
    options = {
      name = mkOption { type = types.str; default = name; description = "The user's name (checked by an assertion, which can name where the user is defined)."; };
      uid = mkOption { type = types.nullOr types.int; default = null; description = "The user id; chosen when null."; };
      group = mkOption { type = passwdEntry types.str; default = if config.isNormalUser then "users" else "nogroup"; description = "The primary group."; };
      extraGroups = mkOption { type = types.listOf (passwdEntry types.str); default = [ ]; description = "Other groups."; };
      description = mkOption { type = passwdEntry types.str; default = ""; description = "The full name (GECOS)."; };
      home = mkOption { type = passwdEntry types.str; default = if config.isNormalUser then "/home/${name}" else "/var/empty"; description = "The home directory."; };
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

  # Groups by their `name` (the attribute's name unless set); extraGroups may name groups not defined.
  groupsByName = lib.listToAttrs (map (g: lib.nameValuePair g.name g) (lib.attrValues cfg.groups));
  groupNames = lib.unique (lib.attrNames groupsByName ++ concatMapList (u: [ u.group ] ++ u.extraGroups) users);
  concatMapList = f: l: lib.concatLists (map f l);
  predefinedGids = { root = 0; wheel = 1; users = 100; nogroup = 65534; };
  givenGids = predefinedGids // lib.mapAttrs (_: g: g.gid) (lib.filterAttrs (_: g: g.gid != null) groupsByName);
  gidNames = lib.filter (g: !(givenGids ? ${g})) groupNames;
  autoGids = assignIds 999 (-1) (lib.attrValues givenGids ++ [ 0 ]) gidNames;
  gidOf = g: givenGids.${g} or autoGids.${g};
  membersOf = g: lib.unique ((groupsByName.${g}.members or [ ]) ++ map (u: u.name) (lib.filter (u: builtins.elem g u.extraGroups) users));

  # ---- assertions, as NixOS's users-groups.nix makes them, naming where each user or group is defined.
  definedAt = option: attr: lib.concatStringsSep ", " (map (d:
    let p = builtins.unsafeGetAttrPos attr d.value; in if p != null then "${p.file}:${toString p.line}" else d.file)
    (lib.filter (d: lib.isAttrs d.value && d.value ? ${attr}) option.definitionsWithLocations));
  # `users.users."bad:name"`: the attribute quoted when it is not a plain name.
  showAttr = attr: if builtins.match "[a-zA-Z_][a-zA-Z0-9_'-]*" attr != null then attr else builtins.toJSON attr;
  userAt = attr: "users.users.${showAttr attr} (defined in ${definedAt options.users.users attr})";
  groupAt = attr: "users.groups.${showAttr attr} (defined in ${definedAt options.users.groups attr})";
  # shadow's is_valid_name, as NixOS checks it.
  nameRegex = "[a-zA-Z0-9_.][a-zA-Z0-9_.-]*";
  # The first two attributes holding the same value of `field` (a uid, a gid, a name), or null.
  duplicate = field: set:
    let
      entries = lib.filter (e: e.value != null) (lib.mapAttrsToList (attr: x: { inherit attr; value = x.${field}; }) set);
      clashes = lib.concatMap (a: map (b: [ a b ]) (lib.filter (b: b.value == a.value && b.attr > a.attr) entries)) entries;
    in if clashes == [ ] then null else lib.head clashes;
  uniqueness = what: field: at: set:
    let d = duplicate field set; in {
      assertion = d == null;
      message = let a = lib.elemAt d 0; b = lib.elemAt d 1; in
        "${what}s must be unique: ${at a.attr} and ${at b.attr} both have ${field} ${toString a.value}.";
    };
  userAssertions = attr: u:
    let
      # NixOS's rule: a uid below 1000 makes a user a system user unless it is a normal one.
      effectivelySystem = u.isSystemUser || (u.uid != null && u.uid < 1000 && !u.isNormalUser);
    in [
      {
        assertion = builtins.match nameRegex u.name != null;
        message = "The user name `${u.name}' of ${userAt attr} is not valid: it must match ${nameRegex}.";
      }
      {
        assertion = effectivelySystem != u.isNormalUser;
        message = "Exactly one of users.users.${attr}.isSystemUser and users.users.${attr}.isNormalUser must be set, in ${userAt attr}.";
      }
      {
        assertion = u.isNormalUser && u.uid != null -> u.uid >= 1000;
        message = "users.users.${attr}.uid is ${toString u.uid}, below 1000, but users.users.${attr}.isNormalUser is set, in ${userAt attr}: set isSystemUser instead, or a uid of 1000 or more.";
      }
      {
        assertion = u.hashedPassword != null -> builtins.match ".*:.*" u.hashedPassword == null;
        message = "users.users.${attr}.hashedPassword contains a `:', which would break /etc/shadow (its fields are separated by colons), in ${userAt attr}.";
      }
      {
        assertion = groupsByName ? ${u.group} || predefinedGids ? ${u.group};
        message = "users.users.${attr}.group is `${u.group}', a group that is not defined, in ${userAt attr}: add users.groups.${u.group} = { };";
      }
    ];

  shellOf = u: toString u.shell;
  passwd = lib.concatMapStrings (u: "${u.name}:x:${toString (uidOf u)}:${toString (gidOf u.group)}:${u.description}:${u.home}:${shellOf u}\n") users;
  # `NAME:HASH:FLAG` lines for the activation: FLAG `set` when the configuration fixes the hash, `initial`
  # when it only gives the first one, `clear` for a clear-text initial password, `none` otherwise.
  shadowPlan = lib.concatMapStrings (u:
    if u.hashedPassword != null then "${u.name}\t${u.hashedPassword}\tset\n"
    else if u.initialHashedPassword != null then "${u.name}\t${u.initialHashedPassword}\tinitial\n"
    else if u.initialPassword != null then "${u.name}\t${u.initialPassword}\tclear\n"
    # No password: `*`, which no password matches, not `!`, which marks the account locked (sshd, without
    # PAM, then refuses its keys too).
    else "${u.name}\t*\tnone\n") users;
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
    assertions = [
      (uniqueness "UID" "uid" userAt cfg.users)
      # Against the predefined groups too: users.groups.media.gid = 100 would be the group `users'.
      (uniqueness "GID" "gid" (attr: if cfg.groups ? ${attr} then groupAt attr else "the predefined group ${attr}")
        (lib.mapAttrs (_: gid: { inherit gid; }) (removeAttrs predefinedGids (lib.attrNames groupsByName)) // cfg.groups))
      (uniqueness "User name" "name" userAt cfg.users)
      (uniqueness "Group name" "name" groupAt cfg.groups)
    ] ++ lib.concatLists (lib.mapAttrsToList userAssertions cfg.users)
    ++ lib.mapAttrsToList (attr: g: {
      assertion = builtins.match nameRegex g.name != null;
      message = "The group name `${g.name}' of ${groupAt attr} is not valid: it must match ${nameRegex}.";
    }) cfg.groups;
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
