package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/awstest"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/pii"
)

// TestForget: the CLI finds the stack's keys table and KMS key by the
// stack's name, reads the sealed personal data, and forget erases it: the
// history keeps the events with null personal fields; a second forget
// fails and says why.
func TestForget(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := t.Context()
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
	keys, err := pii.NewKeys(km, s.ddb, pii.Config{KMSKeyID: aws.ToString(key.KeyMetadata.Arn), Table: s.name + "-keys"})
	if err != nil {
		t.Fatal(err)
	}
	reg := user.NewRegistry()
	c := pii.NewCipher(keys, reg)
	store := dynamo.New(s.ddb, dynamo.Tables{Events: s.name + "-events", Guards: s.name + "-guards"}, dynamo.WithCipher(c))
	s.svc = es.NewService(user.Decider(), reg, store, es.Options{})
	id := newID()
	s.exec(t, id, user.Create{Name: "Ottoline Brackenbury", Email: "ottoline@cli.example"}, "alice", "")
	s.exec(t, id, user.Rename{Name: "Otto Brackenbury"}, "alice", "")

	out, _, code := s.chronicle(t, "history", id)
	if code != exitOK || !strings.Contains(out, "Ottoline Brackenbury") {
		t.Fatalf("history before the forget: %d %s", code, out)
	}
	if _, _, code := s.chronicle(t, "forget", id); code != exitUsage {
		t.Fatalf("forget without a reason: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := s.chronicle(t, "forget", id, "--reason", "art. 17", "--actor", "dpo"); code != exitOK {
		t.Fatalf("forget: exit %d", code)
	}
	out, _, code = s.chronicle(t, "--json", "history", id)
	if code != exitOK || strings.Contains(out, "Brackenbury") || strings.Contains(out, "ottoline") || !strings.Contains(out, "user.forgotten.v1") {
		t.Fatalf("history after the forget: %d %s", code, out)
	}
	if _, errOut, code := s.chronicle(t, "forget", id, "--reason", "again"); code != exitFail || !strings.Contains(errOut, "already forgotten") {
		t.Fatalf("forget twice: exit %d %s", code, errOut)
	}
}
