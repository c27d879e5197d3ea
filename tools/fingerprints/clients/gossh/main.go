// A minimal golang.org/x/crypto/ssh client with the library's default
// configuration: connects once to the address given and reports the error.
package main

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/crypto/ssh"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gossh HOST:PORT")
		os.Exit(2)
	}
	config := &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.Password("fingerprint")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	}
	client, err := ssh.Dial("tcp", os.Args[1], config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gossh:", err)
		os.Exit(1)
	}
	client.Close()
}
