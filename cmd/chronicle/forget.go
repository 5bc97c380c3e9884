package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/chronicle-go/chronicle/domain/es"
	"github.com/chronicle-go/chronicle/domain/user"
	"github.com/chronicle-go/chronicle/infra/dynamo"
	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/service"
)

// keyAliasSuffix names the stack's personal-data key as template.yaml's
// PersonalDataKeyAlias does (and the local runner): alias/<stack>-PersonalDataKey.
const keyAliasSuffix = "-PersonalDataKey"

// cipher is the cipher of the stack's personal data: the keys table
// (KEYS_TABLE, else <stack>-keys) and the KMS key (PII_KEY_ID, else the
// stack's alias). nil when the stack has no keys table: its events were
// written before encryption, in clear.
func (a *app) cipher(ctx context.Context, ddb *dynamodb.Client) (*pii.Cipher, error) {
	table, keyID := a.env("KEYS_TABLE"), a.env("PII_KEY_ID")
	if table == "" && a.stack != "" {
		table = a.stack + "-keys"
		_, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		var missing *ddbtypes.ResourceNotFoundException
		if errors.As(err, &missing) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("keys table %s: %w", table, err)
		}
	}
	if table == "" {
		return nil, nil
	}
	if keyID == "" {
		if a.stack == "" {
			return nil, usagef("KEYS_TABLE is set: PII_KEY_ID (the KMS key) is needed too")
		}
		keyID = "alias/" + a.stack + keyAliasSuffix
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := pii.NewKeys(kms.NewFromConfig(cfg), ddb, pii.Config{KMSKeyID: keyID, Table: table})
	if err != nil {
		return nil, err
	}
	reg := service.Registry()
	return pii.NewCipher(keys, reg, pii.ForgetOn(reg.Erases)), nil
}

// sealedTables is what the commands that write sealed personal data need:
// the events and guards tables, the DynamoDB client and the stack's cipher.
type sealedTables struct {
	ddb            *dynamodb.Client
	cipher         *pii.Cipher
	events, guards string
}

// sealedTables finds them, or fails with why when the stack has no keys
// table (its personal data is not encrypted): "this stack has no keys
// table: " + why.
func (a *app) sealedTables(ctx context.Context, why string) (sealedTables, error) {
	events, err := a.events()
	if err != nil {
		return sealedTables{}, err
	}
	guards, err := a.table(a.env("GUARDS_TABLE"), "guards", "stack")
	if err != nil {
		return sealedTables{}, err
	}
	ddb, err := a.dynamo(ctx)
	if err != nil {
		return sealedTables{}, err
	}
	c, err := a.cipher(ctx, ddb)
	if err != nil {
		return sealedTables{}, err
	}
	if c == nil {
		return sealedTables{}, errors.New("this stack has no keys table: " + why)
	}
	return sealedTables{ddb: ddb, cipher: c, events: events, guards: guards}, nil
}

// forgetCmd: chronicle forget <id> --reason R [--actor SUB]. The same
// command as POST /users/{id}/forget: the deletion (for a live user) and
// user.forgotten.v1 appended, then the user's data key destroyed. A user
// already forgotten is reported, and its key destroyed again (a forget cut
// short between the two steps is completed).
func forgetCmd(fs *flag.FlagSet, a *app) func(context.Context, []string) error {
	reason := fs.String("reason", "", "why (required): recorded on the events")
	actor := fs.String("actor", "chronicle-cli", "the actor recorded on the events")
	return func(ctx context.Context, args []string) error {
		id, err := userID(args, 1)
		if err != nil {
			return err
		}
		if *reason == "" {
			return usagef("--reason is required")
		}
		st, err := a.sealedTables(ctx, "its personal data is not encrypted, so it cannot be forgotten by destroying a key")
		if err != nil {
			return err
		}
		ddb, c, events, guards := st.ddb, st.cipher, st.events, st.guards
		store := dynamo.New(ddb, dynamo.Tables{Events: events, Guards: guards}, dynamo.WithCipher(c), dynamo.WithAppendWindow(dynamo.AppendWindow))
		svc := user.NewService(store, es.Options{SnapshotEvery: 100})
		res, err := svc.Execute(ctx, id, user.Forget{Reason: *reason}, es.ExecOptions{Metadata: es.Metadata{Actor: *actor, Reason: *reason}})
		already := errors.Is(err, user.ErrForgotten)
		if err != nil && !already {
			return fmt.Errorf("forget %s: %w", id, err)
		}
		if err := c.Keys().Forget(ctx, id, time.Now()); err != nil {
			return err
		}
		if already {
			return fmt.Errorf("user %s was already forgotten (its key is destroyed)", id)
		}
		if a.asJSON {
			return a.printJSON(struct {
				ID      string `json:"id"`
				Version int64  `json:"version"`
			}{id, res.Version})
		}
		fmt.Fprintf(a.stdout, "user %s forgotten at v%d: its personal data can no longer be read\n", id, res.Version)
		return nil
	}
}
