// Command kube-apiserver is the stock Kubernetes API server, built from the released k8s.io/kubernetes module so that
// tollgate's tests need nothing but the Go toolchain and the module proxy (see scripts/provision.ts).
package main

import (
	"os"

	"k8s.io/component-base/cli"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	os.Exit(cli.Run(app.NewAPIServerCommand()))
}
