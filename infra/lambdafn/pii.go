package lambdafn

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/chronicle-go/chronicle/infra/pii"
	"github.com/chronicle-go/chronicle/infra/service"
)

// userCipher is the cipher of the users' personal data from KEYS_TABLE
// (the wrapped data keys) and PII_KEY_ID (the stack's KMS key), or nil
// when KEYS_TABLE is unset: the store then reads and writes personal data
// in clear, as before encryption. template.yaml sets both for every
// function that reads or writes events.
func userCipher(cfg aws.Config, ddb *dynamodb.Client, getenv Getenv) (*pii.Cipher, error) {
	table := getenv("KEYS_TABLE")
	if table == "" {
		return nil, nil
	}
	r := required{getenv: getenv}
	keyID := r.get("PII_KEY_ID")
	if err := r.err(); err != nil {
		return nil, err
	}
	keys, err := pii.NewKeys(kms.NewFromConfig(cfg), ddb, pii.Config{KMSKeyID: keyID, Table: table})
	if err != nil {
		return nil, err
	}
	reg := service.Registry() // every aggregate's declarations; a team declares none
	return pii.NewCipher(keys, reg, pii.ForgetOn(reg.Erases)), nil
}
