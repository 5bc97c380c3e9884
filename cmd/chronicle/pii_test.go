package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/pii"
)

// TestPIIMigrate: on a stack written in clear (the stack's plain service),
// then given its KMS key and keys table as the upgrade does, pii migrate
// seals the events and hashes the guard, the history still reads through
// the CLI, and a second run reports nothing left.
func TestPIIMigrate(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
	id := newID()
	s.exec(t, id, user.Create{Name: "Hortensia Pemberton", Email: "hortensia@cli.example"}, "alice", "")
	s.exec(t, id, user.Rename{Name: "Hortense Pemberton"}, "alice", "")

	if _, errOut, code := s.chronicle(t, "pii", "migrate"); code != exitFail || !strings.Contains(errOut, "no keys table") {
		t.Fatalf("migrate before the upgrade: exit %d %s", code, errOut)
	}
	km := kms.NewFromConfig(awstest.Config(t))
	key, err := km.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := km.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/" + s.name + keyAliasSuffix), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
		t.Fatal(err)
	}
	if err := pii.CreateTable(ctx, s.ddb, s.name+"-keys"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _ = s.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(s.name + "-keys")})
	})

	out, _, code := s.chronicle(t, "pii", "migrate", "--segments", "2")
	if code != exitOK || !strings.Contains(out, "events:    2 sealed") || !strings.Contains(out, "guards:    1 moved") {
		t.Fatalf("migrate: exit %d %s", code, out)
	}
	for _, table := range []string{"-events", "-guards"} {
		p := dynamodb.NewScanPaginator(s.ddb, &dynamodb.ScanInput{TableName: aws.String(s.name + table)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, item := range page.Items {
				for name, v := range item {
					if v, ok := v.(*ddbtypes.AttributeValueMemberS); ok && (strings.Contains(v.Value, "Pemberton") || strings.Contains(v.Value, "hortensia@")) {
						t.Fatalf("%s %s: %s still in clear", table, name, v.Value)
					}
				}
			}
		}
	}
	out, _, code = s.chronicle(t, "pii", "migrate")
	if code != exitOK || !strings.Contains(out, "nothing left to migrate") {
		t.Fatalf("migrate again: exit %d %s", code, out)
	}
	out, _, code = s.chronicle(t, "history", id)
	if code != exitOK || !strings.Contains(out, "Hortensia Pemberton") {
		t.Fatalf("history after the migration: %d %s", code, out)
	}
}
