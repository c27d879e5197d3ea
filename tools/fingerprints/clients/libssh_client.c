/* A minimal libssh client with the library's default options: connects once
 * to HOST PORT and reports the error. */
#include <libssh/libssh.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: libssh_client HOST PORT\n");
        return 2;
    }
    unsigned int port = (unsigned int)strtoul(argv[2], NULL, 10);
    long timeout = 10;
    ssh_session session = ssh_new();
    if (session == NULL) {
        fprintf(stderr, "libssh_client: ssh_new failed\n");
        return 1;
    }
    ssh_options_set(session, SSH_OPTIONS_HOST, argv[1]);
    ssh_options_set(session, SSH_OPTIONS_PORT, &port);
    ssh_options_set(session, SSH_OPTIONS_USER, "root");
    ssh_options_set(session, SSH_OPTIONS_TIMEOUT, &timeout);
    /* ssh_connect reads the default configuration files, as libssh does
     * for any program that has not parsed one itself. */
    int rc = ssh_connect(session);
    if (rc != SSH_OK)
        fprintf(stderr, "libssh_client: %s\n", ssh_get_error(session));
    ssh_disconnect(session);
    ssh_free(session);
    return rc == SSH_OK ? 0 : 1;
}
