// Command kubectl is the stock kubectl, built from the released k8s.io/kubectl module at the API server's version.
// No client-auth plugins are linked in: tollgate's tests authenticate with bearer tokens only.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	// RunNoErrOutput leaves the error to CheckErr, which prints it the way kubectl users know and picks the exit code.
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
