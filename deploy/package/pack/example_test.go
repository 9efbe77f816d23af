package pack_test

import (
	"context"
	"fmt"
	"log"

	"github.com/f2fauth/f2fauth/deploy/package/pack"
)

// Package builds both handlers and writes caller.zip and callee.zip; deploy/azure
// deploys them from deploy/azure/dist.
func ExamplePackage() {
	paths, err := pack.Package(context.Background(), ".", pack.DefaultOutDir)
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range paths {
		fmt.Println("wrote", p)
	}
}

func ExampleApp_ZipName() {
	for _, a := range pack.Apps {
		fmt.Println(a.Dir, "->", a.ZipName())
	}
	// Output:
	// caller/functionapp -> caller.zip
	// callee/functionapp -> callee.zip
}
